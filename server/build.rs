//! Embeds every template under `templates/` (pages and emails, `.html` and `.txt`) into
//! the binary, so that a release build needs no files beside it and no list is kept by
//! hand. A template that does not parse fails the build.

fn main() {
    minijinja_embed::embed_templates!("../templates", &[".html", ".txt"]);
}

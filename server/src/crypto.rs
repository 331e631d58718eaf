//! Secrets at rest and in transit through Ferry: the data-directory key that encrypts
//! customer credentials (XChaCha20-Poly1305), argon2id password hashes for staff and
//! projects, and random tokens (sessions, API tokens, CSRF) stored only as SHA-256.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The version tag in front of every ciphertext, so the format can change later.
const CIPHERTEXT_PREFIX: &str = "v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Encrypts and decrypts customer secrets with the key in the data directory.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// Reads the key file, or creates it (mode 0600) with a fresh random key when it is
    /// missing. The file holds the key in base64 on one line.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let key = if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read the key file {}", path.display()))?;
            let key = STANDARD.decode(text.trim()).map_err(|_| {
                anyhow!(
                    "The key file {} is not base64; restore it from a backup (without it stored credentials cannot be read)",
                    path.display()
                )
            })?;
            anyhow::ensure!(
                key.len() == KEY_LEN,
                "The key file {} must hold {KEY_LEN} bytes, it holds {}",
                path.display(),
                key.len()
            );
            key
        } else {
            let mut key = vec![0u8; KEY_LEN];
            getrandom::fill(&mut key).map_err(|e| anyhow!("No randomness for a key: {e}"))?;
            write_private_file(path, format!("{}\n", STANDARD.encode(&key)).as_bytes())
                .with_context(|| format!("Failed to write the key file {}", path.display()))?;
            key
        };
        Self::from_key(&key)
    }

    pub fn from_key(key: &[u8]) -> anyhow::Result<Self> {
        let aead = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| anyhow!("An encryption key must be {KEY_LEN} bytes"))?;
        Ok(Self { aead })
    }

    pub fn encrypt(&self, secret: &SecretString) -> anyhow::Result<String> {
        let blob = self.encrypt_bytes(secret.expose_secret().as_bytes())?;
        Ok(format!("{CIPHERTEXT_PREFIX}{}", STANDARD.encode(blob)))
    }

    /// Bytes (a file that may hold passwords) sealed: the nonce, then the ciphertext.
    pub fn encrypt_bytes(&self, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| anyhow!("No randomness for a nonce: {e}"))?;
        let ciphertext = self
            .aead
            .encrypt(&XNonce::from(nonce), plain)
            .map_err(|_| anyhow!("Encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// One chunk of a file sealed, bound to `aad` (the file, the chunk's place and
    /// whether it is the last): the nonce, then the ciphertext.
    ///
    /// Written by hand because the AEAD crates' STREAM construction is gone from the
    /// `aead` version `chacha20poly1305` 0.11 uses; binding each chunk to its file,
    /// index and last-flag through the associated data gives the same guarantees: no
    /// chunk can be moved, dropped or the file cut short without failing to open.
    pub fn seal_chunk(&self, plain: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        use chacha20poly1305::aead::Payload;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| anyhow!("No randomness for a nonce: {e}"))?;
        let ciphertext = self
            .aead
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| anyhow!("Encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// What [`Cipher::seal_chunk`] sealed with the same `aad`.
    pub fn open_chunk(&self, blob: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        use chacha20poly1305::aead::Payload;
        anyhow::ensure!(blob.len() > NONCE_LEN, "A stored chunk is cut short");
        let (nonce, msg) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| anyhow!("A stored chunk has a bad nonce"))?;
        self.aead
            .decrypt(&XNonce::from(nonce), Payload { msg, aad })
            .map_err(|_| anyhow!("A stored chunk does not open: moved, cut or another key"))
    }

    /// What [`Cipher::encrypt_bytes`] sealed.
    pub fn decrypt_bytes(&self, blob: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(
            blob.len() > NONCE_LEN,
            "Stored bytes are not in Ferry's format"
        );
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| anyhow!("Stored bytes have a bad nonce"))?;
        self.aead
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| anyhow!("Stored bytes do not decrypt with this data directory's key"))
    }

    pub fn decrypt(&self, stored: &str) -> anyhow::Result<SecretString> {
        let blob = stored
            .strip_prefix(CIPHERTEXT_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|blob| blob.len() > NONCE_LEN)
            .ok_or_else(|| anyhow!("A stored secret is not in Ferry's format"))?;
        let plain = self.decrypt_bytes(&blob).map_err(|_| {
            anyhow!("A stored secret does not decrypt with this data directory's key")
        })?;
        let text = String::from_utf8(plain).map_err(|_| anyhow!("A stored secret is not text"))?;
        Ok(SecretString::from(text))
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// An argon2id hash (PHC string) of a password, with a fresh salt. CPU-heavy: call it
/// from `spawn_blocking` on a server.
pub fn hash_password(password: &SecretString) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow!("Failed to hash a password: {e}"))
}

/// Whether `password` matches the stored argon2 hash. A malformed hash never matches.
pub fn verify_password(hash: &str, password: &SecretString) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
}

/// `n` random bytes as URL-safe base64: session cookies, API tokens, CSRF tokens.
pub fn random_token(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("No randomness for a token: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A password people can type: 20 characters from an alphabet without look-alikes.
pub fn random_password() -> anyhow::Result<SecretString> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("No randomness for a password: {e}"))?;
    let text: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(SecretString::from(text))
}

/// The SHA-256 of a file, in hex: what identifies it once its bytes are erased.
pub fn digest_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How a random token is stored: a lookup key that reveals nothing of the token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_chunk_opens_only_in_its_place() {
        let cipher = Cipher::from_key(&[3u8; 32]).unwrap();
        let sealed = cipher.seal_chunk(b"BEGIN:VCARD", b"file\x00\x01").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"));
        assert_eq!(
            cipher.open_chunk(&sealed, b"file\x00\x01").unwrap(),
            b"BEGIN:VCARD"
        );
        // Another place, another file, another key, a flipped bit: none opens.
        assert!(cipher.open_chunk(&sealed, b"file\x00\x00").is_err());
        assert!(cipher.open_chunk(&sealed, b"other\x00\x01").is_err());
        let other = Cipher::from_key(&[4u8; 32]).unwrap();
        assert!(other.open_chunk(&sealed, b"file\x00\x01").is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(cipher.open_chunk(&flipped, b"file\x00\x01").is_err());
        assert!(cipher.open_chunk(&sealed[..10], b"file\x00\x01").is_err());
    }

    #[test]
    fn encrypts_so_only_the_same_key_decrypts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let cipher = Cipher::load_or_create(&path).unwrap();
        let stored = cipher.encrypt(&SecretString::from("hunter2")).unwrap();
        assert!(!stored.contains("hunter2"));
        let again = Cipher::load_or_create(&path).unwrap();
        assert_eq!(again.decrypt(&stored).unwrap().expose_secret(), "hunter2");
        let other = Cipher::from_key(&[7u8; 32]).unwrap();
        let err = other.decrypt(&stored).unwrap_err().to_string();
        assert!(err.contains("does not decrypt"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn verifies_only_the_right_password() {
        let hash = hash_password(&SecretString::from("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, &SecretString::from("correct horse")));
        assert!(!verify_password(&hash, &SecretString::from("wrong horse")));
        assert!(!verify_password("not a hash", &SecretString::from("x")));
    }
}

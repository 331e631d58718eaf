//! One of a fixed set of words in a JSON body (`"duplicates": "skip"`), listed in the
//! OpenAPI document as its enum, yet parsed without failing the whole body: a word
//! that is not one of the set is kept as its field error, so that the answer is one
//! 422 naming every field that is wrong rather than a 400 naming the first.

use std::borrow::Cow;
use std::str::FromStr;

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

use crate::domain::{FieldError, Parsed};

#[derive(Debug, Clone)]
pub struct Choice<T>(Parsed<T>);

impl<T> Choice<T> {
    /// The value, or its error under the field's name as the answer spells it.
    pub fn field(self, field: &'static str) -> Parsed<T> {
        self.0.map_err(|e| FieldError { field, ..e })
    }
}

impl<T: Type> Type for Choice<T> {
    own_raw_value!();

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + FromStr<Err = FieldError>> ParseFromJSON for Choice<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Self(text.parse())),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<T: Type + ToJSON> ToJSON for Choice<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.as_ref().ok().and_then(ToJSON::to_json)
    }
}

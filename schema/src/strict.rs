//! JSON objects only where a request has an object. serde's derived structs also accept an
//! array of their fields in order (`"limits": [null, null]`), which no client means and the
//! spec does not allow: the fields of request bodies that hold structs go through these.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

fn from_map<T: DeserializeOwned, E: serde::de::Error>(map: Map<String, Value>) -> Result<T, E> {
    T::deserialize(Value::Object(map)).map_err(E::custom)
}

/// A struct that must be written as a JSON object.
pub fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<T, D::Error> {
    from_map(Map::deserialize(deserializer)?)
}

/// An optional struct that must be written as a JSON object (or `null`).
pub fn optional_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<Map<String, Value>>::deserialize(deserializer)?
        .map(from_map)
        .transpose()
}

/// A list of structs, each written as a JSON object.
pub fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<Map<String, Value>>::deserialize(deserializer)?
        .into_iter()
        .map(from_map::<T, D::Error>)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::run::RunRequest;

    #[test]
    fn structs_written_as_arrays_are_refused() {
        for body in [
            r#"{"language": "python", "limits": [null, null]}"#,
            r#"{"language": "python", "limits": {"run": [1, 2]}}"#,
            r#"{"language": "python", "files": [["main.py", "print(1)"]]}"#,
            r#"{"language": "python", "tests": [["1", "1"]]}"#,
        ] {
            let error = serde_json::from_str::<RunRequest>(body).expect_err(body);
            assert!(
                error.to_string().contains("expected a map"),
                "{body}: {error}"
            );
        }
        let fine = r#"{"language": "python", "limits": {"run": {"cpu_ms": 5}}, "files": [{"name": "a.py", "content": ""}], "tests": [{"stdin": ""}]}"#;
        let request: RunRequest = serde_json::from_str(fine).expect("objects are fine");
        assert_eq!(request.limits.run.and_then(|run| run.cpu_ms), Some(5));
    }
}

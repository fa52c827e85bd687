//! Helpers of the infrastructure tests: where the repository and the tools are, and the
//! Terraform files read as JSON by python-hcl2 (a parser nobody here wrote).
//!
//! - [`repository`]: the repository's root.
//! - [`python_tools`]: the Python environment holding python-hcl2 (`CODERUN_TEST_PYTHON_TOOLS`).
//! - [`TerraformModule`]: every `.tf` file of one directory, parsed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory named by a variable the test scripts set; a test that needs it fails without it.
pub fn tool_directory(variable: &str) -> PathBuf {
    let directory = std::env::var_os(variable).unwrap_or_else(|| {
        panic!("{variable} is not set: run the tests through scripts/test.sh, which installs the tools")
    });
    PathBuf::from(directory)
}

/// The Python environment with python-hcl2.
pub fn python_tools() -> PathBuf {
    tool_directory("CODERUN_TEST_PYTHON_TOOLS")
}

/// The blocks of one kind (`resource`, `module`, `variable`…) of a Terraform directory, as
/// python-hcl2 gives them: a list of single-key objects.
pub struct TerraformModule {
    /// The directory, for messages.
    pub path: PathBuf,
    /// Every file's parse, merged: block kind to the list of its blocks.
    pub blocks: serde_json::Map<String, Value>,
}

const PARSE: &str = r#"
import hcl2, json, sys, pathlib
merged = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with open(path) as f:
        for kind, blocks in hcl2.load(f).items():
            merged.setdefault(kind, []).extend(blocks)
json.dump(merged, sys.stdout)
"#;

impl TerraformModule {
    /// Parses every `.tf` file of `directory` (relative to the repository's `terraform/`).
    pub fn load(directory: &str) -> Self {
        let path = repository().join("terraform").join(directory);
        let output = Command::new(python_tools().join("bin/python"))
            .args(["-c", PARSE])
            .arg(&path)
            .output()
            .expect("failed to run python-hcl2");
        assert!(
            output.status.success(),
            "python-hcl2 could not parse {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let Value::Object(blocks) = serde_json::from_slice(&output.stdout).expect("JSON") else {
            panic!("python-hcl2 gave no object for {}", path.display());
        };
        Self { path, blocks }
    }

    /// The resource `kind.name`, or a failure naming what is missing.
    pub fn resource(&self, kind: &str, name: &str) -> &Value {
        self.find("resource", kind)
            .into_iter()
            .find_map(|resources| resources.get(name))
            .unwrap_or_else(|| panic!("{} has no resource {kind}.{name}", self.path.display()))
    }

    /// Every block `section.kind` (e.g. `resource`, `aws_instance`): one object per block.
    pub fn find(&self, section: &str, kind: &str) -> Vec<&Value> {
        self.blocks
            .get(section)
            .and_then(Value::as_array)
            .map(|blocks| blocks.iter().filter_map(|block| block.get(kind)).collect())
            .unwrap_or_default()
    }

    /// The names of the blocks of a section (variables, modules, outputs).
    pub fn names(&self, section: &str) -> Vec<String> {
        self.blocks
            .get(section)
            .and_then(Value::as_array)
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|block| block.keys().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A block's attribute: python-hcl2 wraps nested blocks in lists; this looks through them.
pub fn attribute<'a>(block: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut value = block;
    for key in path {
        value = match value {
            Value::Array(items) => items.iter().find_map(|item| item.get(*key))?,
            other => other.get(*key)?,
        };
    }
    Some(value)
}

/// The text of a value as python-hcl2 prints it (strings keep their `${}`s).
pub fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

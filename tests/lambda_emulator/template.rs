//! The functions' environment as `template.yaml` gives it: `Globals.Function.Environment.Variables` and each
//! function's own `Environment.Variables`, read line by line (the only part of the template this needs), with
//! `!Ref`s resolved to what the test provisioned. A `!Ref` the test did not provision fails the test, so the
//! template cannot grow a setting the emulated functions silently lack.

use std::collections::BTreeMap;
use std::path::Path;

pub struct Template {
    lines: Vec<String>,
}

/// One `NAME: value` line of a `Variables:` block.
enum Value {
    Literal(String),
    Ref(String),
}

impl Template {
    pub fn read(path: &Path) -> Template {
        let text = std::fs::read_to_string(path).expect("template.yaml");
        Template {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start().len()
    }

    /// The `Variables:` block under the section that starts at `start` (the first one before the next line
    /// indented no deeper than the section's header).
    fn variables_after(&self, start: usize) -> Vec<(String, Value)> {
        let header_indent = Self::indent(&self.lines[start]);
        let mut i = start + 1;
        while i < self.lines.len() {
            let line = &self.lines[i];
            if !line.trim().is_empty() && Self::indent(line) <= header_indent {
                return Vec::new();
            }
            if line.trim() == "Variables:" && self.lines[i - 1].trim() == "Environment:" {
                break;
            }
            i += 1;
        }
        if i >= self.lines.len() {
            return Vec::new();
        }
        let block_indent = Self::indent(&self.lines[i]);
        let mut out = Vec::new();
        for line in &self.lines[i + 1..] {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if Self::indent(line) <= block_indent {
                break;
            }
            let (name, value) = trimmed
                .split_once(':')
                .unwrap_or_else(|| panic!("template variable line {trimmed:?}"));
            let value = value.split(" #").next().unwrap_or_default().trim();
            let value = match value.strip_prefix("!Ref ") {
                Some(reference) => Value::Ref(reference.trim().to_string()),
                None => Value::Literal(value.trim_matches('"').to_string()),
            };
            out.push((name.trim().to_string(), value));
        }
        out
    }

    fn section(&self, header: &str, indent: usize) -> usize {
        self.lines
            .iter()
            .position(|l| l.trim_end() == format!("{}{header}:", " ".repeat(indent)))
            .unwrap_or_else(|| panic!("template.yaml has no {header}"))
    }

    /// The `Default` of template parameter `name`, as a deployment that does not override it gets.
    fn parameter_default(&self, name: &str) -> Option<String> {
        let parameters = self
            .lines
            .iter()
            .position(|l| l.trim_end() == "Parameters:")?;
        let start = parameters
            + 1
            + self.lines[parameters + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || Self::indent(l) > 0)
                .position(|l| l.trim_end() == format!("  {name}:"))?;
        self.lines[start + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || Self::indent(l) > 2)
            .find_map(|l| l.trim().strip_prefix("Default:"))
            .map(|v| v.trim().trim_matches('"').to_string())
    }

    /// The function's `Timeout` in seconds (the Globals' if it sets none, else Lambda's default 3).
    pub fn timeout_seconds(&self, logical_id: &str) -> u64 {
        let find = |start: usize| {
            let indent = Self::indent(&self.lines[start]);
            self.lines[start + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || Self::indent(l) > indent)
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Timeout:")
                        .map(|v| v.trim().parse::<u64>().expect("Timeout"))
                })
        };
        find(self.section(logical_id, 2))
            .or_else(|| find(self.section("Globals", 0)))
            .unwrap_or(3)
    }

    /// The environment of function `logical_id`, `!Ref`s resolved through `refs`.
    pub fn environment(
        &self,
        logical_id: &str,
        refs: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let globals = self.section("Globals", 0);
        let function = self.section(logical_id, 2);
        let mut env = BTreeMap::new();
        let own = self.variables_after(function);
        assert!(
            !own.is_empty(),
            "{logical_id}: no environment of its own found in template.yaml"
        );
        for (name, value) in self.variables_after(globals).into_iter().chain(own) {
            let value = match value {
                Value::Literal(v) => v,
                Value::Ref(r) => refs
                    .get(&r)
                    .cloned()
                    .or_else(|| self.parameter_default(&r))
                    .unwrap_or_else(|| {
                        panic!(
                            "{logical_id}: {name} is !Ref {r}, which this test does not provision \
                             and which is no template parameter with a default"
                        )
                    }),
            };
            env.insert(name, value);
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_globals_and_the_functions_own_variables() {
        let template = Template {
            lines: "Globals:\n  Function:\n    Environment:\n      Variables:\n        RUST_LOG: info\n        MAPPINGS_SSM_PARAMETER: !Ref MappingsParameterName\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          # a comment\n          TABLE: !Ref T\n          LEASE: \"150\"\n      Policies: []\n  G:\n    Type: X\n"
                .lines()
                .map(str::to_string)
                .collect(),
        };
        let refs = BTreeMap::from([
            ("MappingsParameterName".to_string(), "/m".to_string()),
            ("T".to_string(), "table-1".to_string()),
        ]);
        let env = template.environment("F", &refs);
        assert_eq!(
            env,
            BTreeMap::from([
                ("RUST_LOG".to_string(), "info".to_string()),
                ("MAPPINGS_SSM_PARAMETER".to_string(), "/m".to_string()),
                ("TABLE".to_string(), "table-1".to_string()),
                ("LEASE".to_string(), "150".to_string()),
            ])
        );
    }

    #[test]
    fn an_unprovisioned_parameter_takes_its_default() {
        let template = Template {
            lines: "Globals:\n  Function:\n    Timeout: 3\nParameters:\n  Budget:\n    Type: Number\n    Default: 25\n  NoDefault:\n    Type: String\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          A: !Ref Budget\n          B: one\n          C: two\n          D: three\n"
                .lines()
                .map(str::to_string)
                .collect(),
        };
        let env = template.environment("F", &BTreeMap::new());
        assert_eq!(env["A"], "25");
        assert_eq!(template.parameter_default("NoDefault"), None);
        assert_eq!(template.parameter_default("F"), None);
    }
}

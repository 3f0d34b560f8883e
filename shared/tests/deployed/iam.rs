//! IAM identity-policy evaluation, as far as the template's function roles need it: an explicit Deny wins, else
//! an Allow must match, else the call is implicitly denied. `Action`/`NotAction` match case-insensitively and
//! `Resource`/`NotResource` case-sensitively, both with the `*` (any run, `:` and `/` included) and `?` (one
//! character) wildcards. Conditions are not evaluated: an Allow with one grants nothing here and a Deny with one
//! is taken to apply, so a condition can only make a test fail, never pass one AWS would refuse.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` (the call must match one) or `NotAction` (it must match none); likewise resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Any(Vec<String>),
    NoneOf(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Statement {
    /// Which policy of the role, and the statement's Sid.
    pub source: String,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    pub has_condition: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed { by: String },
    ExplicitlyDenied { by: String },
    ImplicitlyDenied,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    format!("{what} entry {v} is not a string (an unresolved intrinsic?)")
                })
            })
            .collect(),
        other => Err(format!(
            "{what} is {other}, not a string or a list of strings"
        )),
    }
}

fn patterns(statement: &Value, key: &str, not_key: &str) -> Result<Patterns, String> {
    match (statement.get(key), statement.get(not_key)) {
        (Some(v), None) => Ok(Patterns::Any(strings(v, key)?)),
        (None, Some(v)) => Ok(Patterns::NoneOf(strings(v, not_key)?)),
        (Some(_), Some(_)) => Err(format!("both {key} and {not_key}")),
        (None, None) => Err(format!("neither {key} nor {not_key}")),
    }
}

impl Statement {
    /// A statement whose intrinsics are already resolved to strings.
    pub fn parse(policy: &str, statement: &Value) -> Result<Statement, String> {
        let sid = statement.get("Sid").and_then(Value::as_str);
        let source = match sid {
            Some(sid) => format!("{policy} ({sid})"),
            None => policy.to_string(),
        };
        let effect = match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("{source}: Effect {other:?}")),
        };
        Ok(Statement {
            effect,
            actions: patterns(statement, "Action", "NotAction")
                .map_err(|e| format!("{source}: {e}"))?,
            resources: patterns(statement, "Resource", "NotResource")
                .map_err(|e| format!("{source}: {e}"))?,
            has_condition: statement.get("Condition").is_some(),
            source,
        })
    }

    fn applies(&self, action: &str, resource: &str) -> bool {
        let action_matches = match &self.actions {
            Patterns::Any(p) => p.iter().any(|p| wildcard(p, action, true)),
            Patterns::NoneOf(p) => !p.iter().any(|p| wildcard(p, action, true)),
        };
        let resource_matches = match &self.resources {
            Patterns::Any(p) => p.iter().any(|p| wildcard(p, resource, false)),
            Patterns::NoneOf(p) => !p.iter().any(|p| wildcard(p, resource, false)),
        };
        action_matches && resource_matches
    }
}

/// Whether `action` on `resource` is allowed by `statements` (all the role's policies together).
pub fn evaluate(statements: &[Statement], action: &str, resource: &str) -> Decision {
    if let Some(deny) = statements
        .iter()
        .find(|s| s.effect == Effect::Deny && s.applies(action, resource))
    {
        return Decision::ExplicitlyDenied {
            by: deny.source.clone(),
        };
    }
    match statements
        .iter()
        .find(|s| s.effect == Effect::Allow && !s.has_condition && s.applies(action, resource))
    {
        Some(allow) => Decision::Allowed {
            by: allow.source.clone(),
        },
        None => Decision::ImplicitlyDenied,
    }
}

/// IAM's wildcard match: `*` any run of characters (possibly empty), `?` exactly one; nothing else is special.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    // Iterative glob with one backtrack point: linear enough for ARNs.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

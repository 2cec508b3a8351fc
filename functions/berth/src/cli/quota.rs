//! `berth quota …`: projects' storage quotas through `/api/v2.0/quotas`
//! (system admins only). A quota's id is its project's id.

use clap::Subcommand;
use serde_json::{Value, json};

use super::table::Table;
use super::{CliError, Ctx, field, project};

#[derive(Subcommand, Debug)]
pub(crate) enum QuotaCommand {
    /// List every project's quota: its limit and what it uses.
    List,
    /// Set a project's storage limit.
    Set {
        /// The project's name.
        project: String,
        /// Bytes (`1073741824`), with a unit (`10GiB`, `500MiB`, `2GB`),
        /// or -1 / `unlimited`.
        #[arg(value_parser = parse_size, allow_hyphen_values = true)]
        limit: i64,
    },
}

/// Binary and decimal units, longest first.
const UNITS: [(&str, f64); 11] = [
    ("kib", 1024.0),
    ("mib", 1_048_576.0),
    ("gib", 1_073_741_824.0),
    ("tib", 1_099_511_627_776.0),
    ("pib", 1_125_899_906_842_624.0),
    ("kb", 1e3),
    ("mb", 1e6),
    ("gb", 1e9),
    ("tb", 1e12),
    ("pb", 1e15),
    ("b", 1.0),
];

/// A limit: `-1` / `unlimited`, or a size above 0 in bytes.
pub(crate) fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" || t == "unlimited" {
        return Ok(-1);
    }
    let (number, factor) = UNITS
        .iter()
        .find_map(|(u, f)| t.strip_suffix(u).map(|n| (n.trim(), *f)))
        .unwrap_or((t.as_str(), 1.0));
    let bad = || {
        format!(
            "{s:?} is not a size: give bytes, a number with KiB/MiB/GiB/TiB (or KB/MB/GB/TB), or -1 for unlimited"
        )
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let bytes = if factor == 1.0 && !number.contains('.') {
        number.parse::<i64>().map_err(|_| bad())?
    } else {
        let v: f64 = number.parse().map_err(|_| bad())?;
        let b = (v * factor).floor();
        if !(b.is_finite() && b < 9.2e18) {
            return Err(bad());
        }
        b as i64
    };
    if bytes <= 0 {
        return Err(format!(
            "{s:?}: a limit is above 0 bytes, or -1 for unlimited"
        ));
    }
    Ok(bytes)
}

/// Bytes as people read them (`1.5 GiB`).
pub(crate) fn human(bytes: i64) -> String {
    const NAMES: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < NAMES.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", NAMES[u])
    }
}

fn storage(v: &Value, key: &str) -> Option<i64> {
    v.get(key)?.get("storage")?.as_i64()
}

fn table(quotas: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "PROJECT", "LIMIT", "USED", "USED %", "UPDATED"]);
    for q in quotas {
        let hard = storage(q, "hard");
        let used = storage(q, "used");
        let limit = match hard {
            Some(-1) => "unlimited".to_owned(),
            Some(h) => human(h),
            None => "-".to_owned(),
        };
        let percent = match (hard, used) {
            (Some(h), Some(u)) if h > 0 => format!("{:.1}%", u as f64 * 100.0 / h as f64),
            _ => "-".to_owned(),
        };
        let name = q
            .get("ref")
            .map_or_else(|| "-".to_owned(), |r| field(r, "name"));
        t.row(vec![
            field(q, "id"),
            name,
            limit,
            used.map_or_else(|| "-".to_owned(), human),
            percent,
            field(q, "update_time"),
        ]);
    }
    t
}

pub(crate) async fn run(ctx: &Ctx, command: &QuotaCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        QuotaCommand::List => {
            let quotas = api.list(&api.path(&["quotas"]), &[]).await?;
            ctx.print(&table(&quotas), &Value::Array(quotas))
        }
        QuotaCommand::Set { project, limit } => {
            // The quota's id is the project's.
            let id = project::project_id(ctx, project).await?;
            api.put(
                &api.path(&["quotas", &id.to_string()]),
                &json!({"hard": {"storage": limit}}),
            )
            .await?;
            let shown = if *limit == -1 {
                "unlimited".to_owned()
            } else {
                format!("{} ({limit} bytes)", human(*limit))
            };
            ctx.done(&format!("set the storage limit of {project} to {shown}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: QuotaCommand,
    }

    fn parse(args: &[&str]) -> Result<QuotaCommand, clap::Error> {
        T::try_parse_from(std::iter::once("quota").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("-1"), Ok(-1));
        assert_eq!(parse_size("unlimited"), Ok(-1));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10GiB"), Ok(10 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("500mib"), Ok(500 * 1024 * 1024));
        assert_eq!(parse_size("7B"), Ok(7));
        for bad in [
            "",
            "0",
            "-2",
            "10G",
            "GiB",
            "1e3",
            "x",
            "99999999999PiB",
            "-5GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn set_takes_negative_one() {
        assert!(matches!(
            parse(&["set", "p", "-1"]).expect("parses"),
            QuotaCommand::Set { limit: -1, .. }
        ));
        assert!(matches!(
            parse(&["set", "p", "1GiB"]).expect("parses"),
            QuotaCommand::Set {
                limit: 1_073_741_824,
                ..
            }
        ));
    }

    #[test]
    fn quotas_render() {
        let q = json!({"id": 3, "ref": {"name": "p"}, "hard": {"storage": 2048}, "used": {"storage": 512}, "update_time": "t"});
        let u =
            json!({"id": 4, "ref": {"name": "q"}, "hard": {"storage": -1}, "used": {"storage": 0}});
        assert_eq!(
            table(&[q, u]).render(),
            "ID   PROJECT   LIMIT       USED    USED %   UPDATED\n\
             3    p         2.0 KiB     512 B   25.0%    t\n\
             4    q         unlimited   0 B     -        -\n"
        );
    }
}

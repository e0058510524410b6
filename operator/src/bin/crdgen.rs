//! Writes the CRDs as YAML: `crdgen` prints them to stdout; `crdgen <dir>` writes one file
//! per CRD into `<dir>` (the checked-in `crds/` and `charts/praetor/crds/`).

use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let docs = operator::crd::crd_yaml().context("serializing the CRDs")?;
    match std::env::args_os().nth(1) {
        None => {
            for (_, yaml) in docs {
                print!("---\n{yaml}");
            }
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in docs {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

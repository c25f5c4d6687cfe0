//! Bakes libpython's directory into the binary's RUNPATH (so the interpreter towerhook was
//! built against is the one it loads) and embeds the `python_sandbox` package sources.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    let python = pyo3_build_config::get();
    println!(
        "cargo:rustc-env=BUILD_PYTHON_MAJOR_MINOR={}.{}",
        python.version().major,
        python.version().minor
    );

    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let package = manifest.join("python_sandbox/towerhook_sandbox");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", package.display());

    let mut modules = Vec::new();
    collect(&package, "towerhook_sandbox", &manifest, &mut modules);
    modules.sort();
    let mut generated = String::from("pub static SANDBOX_SOURCES: &[EmbeddedModule] = &[\n");
    for (name, relative, is_package, absolute) in modules {
        writeln!(
            generated,
            "    EmbeddedModule {{ name: {name:?}, path: {relative:?}, is_package: {is_package}, \
             source: include_str!({absolute:?}) }},"
        )
        .unwrap();
    }
    generated.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sandbox_sources.rs");
    std::fs::write(out, generated).unwrap();
}

/// (module name, path relative to the repo, is a package, absolute path)
fn collect(
    dir: &Path,
    module: &str,
    manifest: &Path,
    out: &mut Vec<(String, String, bool, String)>,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("python_sandbox missing at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(manifest).unwrap().display().to_string();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if path.join("__init__.py").is_file() {
                collect(&path, &format!("{module}.{stem}"), manifest, out);
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            let (name, is_package) = if stem == "__init__" {
                (module.to_string(), true)
            } else {
                (format!("{module}.{stem}"), false)
            };
            out.push((name, relative, is_package, path.display().to_string()));
        }
    }
}

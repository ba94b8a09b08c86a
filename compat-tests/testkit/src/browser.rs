//! Headless Chromium for the browser tests (the broker's web console, sluice-spark's
//! streaming page): Debian's chromium and chromedriver (`compat-tests/scripts/
//! install-chromium.sh`) driven by Selenium from the venv, and where screenshots go.

use std::path::{Path, PathBuf};

use crate::prometheus::venv_python;

/// Debian's Chromium, where the Selenium scripts look for it.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The venv's Python with Selenium, once Chromium and chromedriver are found; a failure
/// naming the install script otherwise (a missing browser fails the test, never skips it).
pub fn selenium_python() -> PathBuf {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: run `bash compat-tests/scripts/install-chromium.sh`"
        );
    }
    venv_python("selenium")
}

/// `<target dir>/test-artifacts`, created: the test executable lives in
/// `<target dir>/<profile>/deps`.
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .ancestors()
        .nth(3)
        .map(|t| t.join("test-artifacts"))
        .unwrap_or_else(|| crate::workspace_root().join("target/test-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

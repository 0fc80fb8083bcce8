//! The official Update Modules (Debian's `mender-client` ships them in
//! `/usr/share/mender/modules/v3`) and artifacts for them, made with the real
//! `mender-artifact write module-image` the way Mender's generators make them
//! (`single-file-artifact-gen`, `directory-artifact-gen`); a throwaway `.deb` for the `deb`
//! module, built with `dpkg-deb` and purged again when dropped.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, DEVICE_TYPE};

/// Where Debian's `mender-client` installs the official modules.
pub const OFFICIAL_MODULES_DIR: &str = "/usr/share/mender/modules/v3";

/// The official modules the tests use, sorted.
pub const OFFICIAL_MODULES: [&str; 4] = ["deb", "directory", "script", "single-file"];

/// Copies the modules in [`OFFICIAL_MODULES`] into `dir` (created), executable. They are
/// plain shell scripts that never refer to their own path, so a copy behaves as the
/// original.
pub fn copy_official_modules(dir: &Path) {
    std::fs::create_dir_all(dir).expect("modules dir");
    for m in OFFICIAL_MODULES {
        let from = Path::new(OFFICIAL_MODULES_DIR).join(m);
        assert!(
            from.is_file(),
            "{} is missing: install Debian's mender-client (scripts/setup-test-deps.sh)",
            from.display()
        );
        let to = dir.join(m);
        std::fs::copy(&from, &to).expect("copy module");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// A module-image artifact being put together: payload files and state scripts in a source
/// directory `<work>/<name>-src`, written with `mender-artifact write module-image`.
pub struct ModuleArtifact {
    src: PathBuf,
    out: PathBuf,
    payload_type: String,
    name: String,
    files: Vec<String>,
    scripts: Vec<String>,
}

impl ModuleArtifact {
    /// An artifact `name` of payload type `payload_type` for [`DEVICE_TYPE`], to be
    /// written to `<work>/<name>.mender`.
    pub fn new(work: &Path, payload_type: &str, name: &str) -> Self {
        let src = work.join(format!("{name}-src"));
        std::fs::create_dir_all(&src).expect("artifact source dir");
        ModuleArtifact {
            src,
            out: work.join(format!("{name}.mender")),
            payload_type: payload_type.to_string(),
            name: name.to_string(),
            files: Vec::new(),
            scripts: Vec::new(),
        }
    }

    /// A payload file `file` (its name in the payload) with `content`, mode `mode`.
    pub fn file_mode(mut self, file: &str, content: impl AsRef<[u8]>, mode: u32) -> Self {
        let path = self.src.join(file);
        std::fs::write(&path, content).expect("payload file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        self.files.push(file.to_string());
        self
    }

    /// A payload file `file` with `content` (mode 0644).
    pub fn file(self, file: &str, content: impl AsRef<[u8]>) -> Self {
        self.file_mode(file, content, 0o644)
    }

    /// A state script `name` (e.g. `ArtifactInstall_Leave_01_x`) with `body`.
    pub fn script(mut self, name: &str, body: &str) -> Self {
        let dir = self.src.join("scripts");
        std::fs::create_dir_all(&dir).expect("scripts dir");
        let path = dir.join(name);
        std::fs::write(&path, body).expect("state script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self.scripts.push(format!("scripts/{name}"));
        self
    }

    /// What `single-file-artifact-gen -d <dest_dir> <file>` bundles: `dest_dir`,
    /// `filename` and `permissions` (`stat -c %a` of the file), each written by `echo` (so
    /// with a trailing newline), then the file itself.
    pub fn single_file(
        work: &Path,
        name: &str,
        dest_dir: &Path,
        filename: &str,
        content: &[u8],
        mode: u32,
    ) -> Self {
        Self::new(work, "single-file", name)
            .file("dest_dir", format!("{}\n", dest_dir.display()))
            .file("filename", format!("{filename}\n"))
            .file("permissions", format!("{mode:o}\n"))
            .file_mode(filename, content, mode)
    }

    /// What `directory-artifact-gen -d <dest_dir> <tree>` bundles: `update.tar` (made by
    /// `tar -cf update.tar -C <tree> .`) and `dest_dir`.
    pub fn directory(work: &Path, name: &str, dest_dir: &Path, tree: &Path) -> Self {
        let mut a = Self::new(work, "directory", name);
        run(Command::new("tar")
            .arg("-cf")
            .arg(a.src.join("update.tar"))
            .arg("-C")
            .arg(tree)
            .arg("."));
        a.files.push("update.tar".to_string());
        a.file("dest_dir", format!("{}\n", dest_dir.display()))
    }

    /// A `script` artifact: the module runs `file` (made executable) in `ArtifactInstall`.
    pub fn script_payload(work: &Path, name: &str, file: &str, body: &str) -> Self {
        Self::new(work, "script", name).file_mode(file, body, 0o755)
    }

    /// A `deb` artifact carrying the package file `deb`.
    pub fn deb(work: &Path, name: &str, deb: &Path) -> Self {
        let file = deb
            .file_name()
            .and_then(|n| n.to_str())
            .expect("deb file name");
        Self::new(work, "deb", name).file(file, std::fs::read(deb).expect("read .deb"))
    }

    /// Runs `mender-artifact write module-image -T <type> -t DEVICE_TYPE -n <name> -f …
    /// -s … -o <work>/<name>.mender` in the source directory; returns the artifact's path.
    pub fn write(&self) -> PathBuf {
        let mut cmd = Command::new("mender-artifact");
        cmd.current_dir(&self.src).args([
            "write",
            "module-image",
            "-T",
            &self.payload_type,
            "-t",
            DEVICE_TYPE,
            "-n",
            &self.name,
        ]);
        for f in &self.files {
            cmd.args(["-f", f]);
        }
        for s in &self.scripts {
            cmd.args(["-s", s]);
        }
        cmd.arg("-o").arg(&self.out);
        run(&mut cmd);
        self.out.clone()
    }
}

/// A one-file Debian package made for one test: package `mender-bridge-test-<pid>-<tag>`
/// installing `hello.txt` under `<tmp>/mender-bridge-deb-test-<pid>-<tag>/`. Dropping it
/// purges the package (`dpkg --purge`) and removes that directory, whatever the test did.
pub struct TestDeb {
    pub package: String,
    /// The package file.
    pub deb: PathBuf,
    /// The directory the package installs into.
    pub prefix: PathBuf,
    /// The file the package installs.
    pub file: PathBuf,
    pub content: String,
}

impl TestDeb {
    /// Builds the package in `work` with `dpkg-deb --build`.
    pub fn build(work: &Path, tag: &str) -> Self {
        let pid = std::process::id();
        let package = format!("mender-bridge-test-{pid}-{tag}");
        let prefix = std::env::temp_dir().join(format!("mender-bridge-deb-test-{pid}-{tag}"));
        let file = prefix.join("hello.txt");
        let content = format!("hello from {package}\n");
        let root = work.join(format!("{package}-root"));
        let control = root.join("DEBIAN");
        std::fs::create_dir_all(&control).expect("DEBIAN dir");
        let inside = root.join(prefix.strip_prefix("/").expect("absolute temp dir"));
        std::fs::create_dir_all(&inside).expect("package dir");
        std::fs::write(inside.join("hello.txt"), &content).expect("package file");
        std::fs::write(
            control.join("control"),
            format!(
                "Package: {package}\nVersion: 1.0\nArchitecture: all\n\
                 Maintainer: mender-bridge tests <tests@example.invalid>\n\
                 Description: mender-bridge deb Update Module test package\n"
            ),
        )
        .expect("control");
        for d in [&root, &control] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let deb = work.join(format!("{package}_1.0_all.deb"));
        let out = Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .arg("--build")
            .arg(&root)
            .arg(&deb)
            .output()
            .expect("run dpkg-deb");
        assert!(
            out.status.success(),
            "dpkg-deb --build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestDeb {
            package,
            deb,
            prefix,
            file,
            content,
        }
    }

    /// The `Status:` line of `dpkg -s <package>` (`None` when dpkg knows no such package).
    pub fn status(&self) -> Option<String> {
        let out = Command::new("dpkg")
            .args(["-s", &self.package])
            .output()
            .expect("run dpkg -s");
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Status: ").map(str::to_string))
    }
}

impl Drop for TestDeb {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", &self.package])
            .output();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Held while a test runs `dpkg` (directly or through the `deb` module): dpkg takes a
/// system-wide lock, and two tests of this binary installing at once would fail on it.
pub static DPKG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

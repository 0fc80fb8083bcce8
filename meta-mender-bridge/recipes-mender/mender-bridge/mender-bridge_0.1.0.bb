SUMMARY = "Mender OTA client that streams artifacts into RAUC, SWUpdate or a raw A/B writer"
DESCRIPTION = "mender-bridge speaks the Mender device API, so the device takes deployments \
               from the Mender dashboard, and streams each artifact's payload into the \
               installer the device already uses: RAUC (D-Bus), SWUpdate (IPC) or a raw A/B \
               block-device writer; other payload types go to Update Modules."
SECTION = "admin"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"
CVE_PRODUCT = "mender-bridge"

# Where the sources come from: a git repository of mender-bridge and a commit, set in
# local.conf or a bbappend, e.g.
#   MENDER_BRIDGE_GIT = "git://git.example.com/mender-bridge.git;protocol=https;branch=main"
#   SRCREV:pn-mender-bridge = "<commit>"
# or a checkout on the build host, with OE-core's externalsrc class:
#   INHERIT += "externalsrc"
#   EXTERNALSRC:pn-mender-bridge = "/path/to/mender-bridge"
# (README.md of this layer). With neither, the recipe is skipped and says why.
MENDER_BRIDGE_GIT ??= ""
SRC_URI = "${@'${MENDER_BRIDGE_GIT};destsuffix=${BP}' if d.getVar('MENDER_BRIDGE_GIT') else ''}"
S = "${UNPACKDIR}/${BP}"

# Parsing must not fail for a layer that is merely present: skip, naming what is missing.
# nooelint: oelint.task.noanonpython
python () {
    if not d.getVar('MENDER_BRIDGE_GIT') and not d.getVar('EXTERNALSRC'):
        raise bb.parse.SkipRecipe("no sources: set MENDER_BRIDGE_GIT (and SRCREV) to a git repository of mender-bridge, or EXTERNALSRC to a checkout (meta-mender-bridge/README.md)")
}

inherit cargo cargo-update-recipe-crates systemd

# Every crate of Cargo.lock, with its checksum (generated; tests/yocto_layer.rs fails when
# it no longer matches Cargo.lock: regenerate with
# `UPDATE_CRATES_INC=1 cargo test --test yocto_layer`).
require ${BPN}-crates.inc

# The installer backend, one cargo feature each, over the raw A/B writer that is always
# built in. "rauc" includes the add-ons' D-Bus token API; "dbus" adds it alone.
PACKAGECONFIG ??= ""
PACKAGECONFIG[rauc] = ",,,rauc"
PACKAGECONFIG[swupdate] = ",,,swupdate"
PACKAGECONFIG[dbus] = ",,,dbus"

def mender_bridge_cargo_features(d):
    chosen = bb.utils.filter('PACKAGECONFIG', 'rauc swupdate dbus', d).split()
    return '--features ' + ','.join(chosen) if chosen else ''

CARGO_BUILD_FLAGS:append = " --no-default-features ${@mender_bridge_cargo_features(d)}"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/config/mender-bridge.service ${D}${systemd_system_unitdir}/
    install -d ${D}${sysconfdir}/mender
    install -m 0644 ${S}/config/mender-bridge.toml ${D}${sysconfdir}/mender/
    if ${@bb.utils.contains('PACKAGECONFIG', 'swupdate', 'true', 'false', d)}; then
        install -d ${D}${systemd_system_unitdir}/mender-bridge.service.d
        install -m 0644 ${S}/config/mender-bridge-swupdate.conf ${D}${systemd_system_unitdir}/mender-bridge.service.d/swupdate.conf
    fi
    if ${@bb.utils.contains_any('PACKAGECONFIG', 'rauc dbus', 'true', 'false', d)}; then
        install -d ${D}${datadir}/dbus-1/system.d
        install -m 0644 ${S}/dbus/io.mender.AuthenticationManager.conf ${D}${datadir}/dbus-1/system.d/
    fi
}

SYSTEMD_SERVICE:${PN} = "mender-bridge.service"
FILES:${PN} += "${datadir}/dbus-1"
CONFFILES:${PN} = "${sysconfdir}/mender/mender-bridge.toml"

# One updater per device: the official client would use the same data directory.
RCONFLICTS:${PN} = "mender-client mender-update mender-auth"

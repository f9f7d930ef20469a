//! The FortiOS release a simulated fabric runs, and what depends on it: the version the
//! CLI and the REST API report, the build number, the `get system status` Version line,
//! and the shape of the `endpoint-control fctems` table.
//!
//! Every node of a fabric runs the same release, chosen by the topology's
//! `[fabric] firmware`. Only releases whose build number and table shape are sourced are
//! offered (`docs/fortios.md`, "Firmware profiles"); anything else is refused by the
//! topology checker with the list of accepted versions.

use std::fmt;

/// How a release keys `config endpoint-control fctems` (`docs/fortios.md`, "Firmware
/// profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FctemsKey {
    /// FortiOS 6.4 to 7.0.7: entries keyed by `name`, at most three of them.
    Name,
    /// FortiOS 7.0.8 and later, 7.2.1 and later: entries keyed by an integer `ems-id`
    /// from 1 to `max_id`, each with its own `name` and `status`.
    EmsId {
        /// The highest `ems-id`: 5 up to 7.2.3, 7 from 7.2.4.
        max_id: u8,
    },
}

/// One FortiOS release the simulator can present itself as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Firmware {
    /// FortiOS 7.0.5 build 0304: the seed's release, and the default.
    #[default]
    V7_0_5,
    /// FortiOS 7.0.7 build 0367: the last 7.0 release with the name-keyed fctems table.
    V7_0_7,
    /// FortiOS 7.0.12 build 0523: ems-id keyed, ids 1 to 5.
    V7_0_12,
    /// FortiOS 7.2.8 build 1639: ems-id keyed, ids 1 to 7.
    V7_2_8,
}

/// What the simulator shows of one release. Sources are in `docs/fortios.md`,
/// "Firmware profiles".
struct Release {
    firmware: Firmware,
    /// `vMAJOR.MINOR.PATCH`, as FortiOS reports it; the topology writes it without the `v`.
    version: &'static str,
    build: u32,
    /// The build date the Version line prints, `YYMMDD`.
    date: &'static str,
    /// The release tag the Version line ends with: `GA`, or `GA.M` for a mature release.
    tag: &'static str,
    fctems: FctemsKey,
}

const RELEASES: &[Release] = &[
    Release {
        firmware: Firmware::V7_0_5,
        version: "v7.0.5",
        build: 304,
        date: "220208",
        tag: "GA",
        fctems: FctemsKey::Name,
    },
    Release {
        firmware: Firmware::V7_0_7,
        version: "v7.0.7",
        build: 367,
        date: "220804",
        tag: "GA",
        fctems: FctemsKey::Name,
    },
    Release {
        firmware: Firmware::V7_0_12,
        version: "v7.0.12",
        build: 523,
        date: "230612",
        tag: "GA.M",
        fctems: FctemsKey::EmsId { max_id: 5 },
    },
    Release {
        firmware: Firmware::V7_2_8,
        version: "v7.2.8",
        build: 1639,
        date: "240313",
        tag: "GA.M",
        fctems: FctemsKey::EmsId { max_id: 7 },
    },
];

/// The model name every simulated FortiGate reports: a FortiGate VM.
pub const MODEL: &str = "FortiGate-VM64";

/// Why a topology's firmware text names no release the simulator offers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareError {
    /// Not `MAJOR.MINOR.PATCH` with decimal numbers.
    #[error("{0:?} is not a FortiOS version written MAJOR.MINOR.PATCH")]
    Malformed(String),
    /// A well-formed version the simulator has no profile for.
    #[error("FortiOS {0} is not simulated")]
    Unknown(String),
}

impl Firmware {
    /// Every release offered, oldest first.
    pub fn all() -> impl Iterator<Item = Firmware> {
        RELEASES.iter().map(|release| release.firmware)
    }

    /// The accepted versions as the topology writes them, quoted and comma-separated:
    /// `"7.0.5", "7.0.7", ...`.
    pub fn accepted() -> String {
        RELEASES
            .iter()
            .map(|release| format!("\"{}\"", &release.version[1..]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The release written `text` (`"7.0.12"`; a leading `v` is accepted).
    pub fn parse(text: &str) -> Result<Firmware, FirmwareError> {
        let number = text.strip_prefix('v').unwrap_or(text);
        let parts: Vec<&str> = number.split('.').collect();
        let decimal = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if parts.len() != 3 || !parts.iter().all(decimal) {
            return Err(FirmwareError::Malformed(text.to_owned()));
        }
        RELEASES
            .iter()
            .find(|release| &release.version[1..] == number)
            .map(|release| release.firmware)
            .ok_or_else(|| FirmwareError::Unknown(number.to_owned()))
    }

    fn release(self) -> &'static Release {
        RELEASES
            .iter()
            .find(|release| release.firmware == self)
            .expect("every firmware has a release entry")
    }

    /// `MAJOR.MINOR.PATCH`: `7.0.12`.
    pub fn number(self) -> &'static str {
        &self.release().version[1..]
    }

    /// The version as FortiOS reports it (REST `version`, the Version line): `v7.0.12`.
    pub fn version(self) -> &'static str {
        self.release().version
    }

    /// The build number (REST `build`): 523.
    pub fn build(self) -> u32 {
        self.release().build
    }

    /// The build number as `get system status` prints it, four digits: `0523`.
    pub fn build_text(self) -> String {
        format!("{:04}", self.build())
    }

    /// What follows `Version: ` in `get system status`:
    /// `FortiGate-VM64 v7.0.12,build0523,230612 (GA.M)`.
    pub fn version_line(self) -> String {
        let release = self.release();
        format!(
            "{MODEL} {},build{},{} ({})",
            self.version(),
            self.build_text(),
            release.date,
            release.tag
        )
    }

    /// How this release keys the fctems table.
    pub fn fctems_key(self) -> FctemsKey {
        self.release().fctems
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_seed_release() {
        let firmware = Firmware::default();
        assert_eq!(firmware.version(), "v7.0.5");
        assert_eq!(
            firmware.version_line(),
            "FortiGate-VM64 v7.0.5,build0304,220208 (GA)"
        );
        assert_eq!(firmware.fctems_key(), FctemsKey::Name);
    }

    #[test]
    fn later_releases_key_fctems_by_ems_id() {
        let firmware = Firmware::parse("7.0.12").unwrap();
        assert_eq!((firmware.version(), firmware.build()), ("v7.0.12", 523));
        assert_eq!(
            firmware.version_line(),
            "FortiGate-VM64 v7.0.12,build0523,230612 (GA.M)"
        );
        assert_eq!(firmware.fctems_key(), FctemsKey::EmsId { max_id: 5 });
        assert_eq!(
            Firmware::parse("v7.2.8").unwrap().fctems_key(),
            FctemsKey::EmsId { max_id: 7 }
        );
        assert_eq!(Firmware::parse("7.0.7").unwrap().fctems_key(), FctemsKey::Name);
    }

    #[test]
    fn unknown_and_malformed_versions_are_told_apart() {
        assert_eq!(
            Firmware::parse("7.0.9"),
            Err(FirmwareError::Unknown("7.0.9".to_owned()))
        );
        for bad in ["7.0", "7.0.x", "seven", "", "7..12", "7.0.12.1"] {
            assert_eq!(
                Firmware::parse(bad),
                Err(FirmwareError::Malformed(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            Firmware::accepted(),
            "\"7.0.5\", \"7.0.7\", \"7.0.12\", \"7.2.8\""
        );
        assert!(Firmware::all().all(|firmware| Firmware::parse(firmware.number()) == Ok(firmware)));
    }
}

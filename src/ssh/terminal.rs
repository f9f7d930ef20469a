//! What the SSH shell does with the bytes a client types, without any socket: the line
//! being edited (echo, backspace, Enter), and the `--More--` pager that holds back a long
//! output (`docs/fortios.md`, "SSH").

use std::collections::VecDeque;

/// What FortiOS prints while a long output waits for a key.
pub const MORE: &str = "--More-- ";
/// Erases [`MORE`] from the terminal line before the next output.
const ERASE_MORE: &str = "\r         \r";

/// What one typed byte did to the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// Nothing to run yet; the bytes to echo (possibly none).
    Echo(Vec<u8>),
    /// Enter: the finished line, after its echoed line end.
    Enter(String),
    /// Ctrl-D on an empty line: the client is done.
    EndOfInput,
}

/// The line being typed. `\r`, `\n` and `\r\n` each end one line.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: Vec<u8>,
    /// The previous byte was `\r`: a `\n` right after it belongs to the same Enter.
    after_cr: bool,
}

impl LineEditor {
    /// Whether `byte` is the `\n` of a `\r\n` whose `\r` already ended a line; clears the
    /// mark either way. The pager uses it too, so `\r\n` is one key there as well.
    pub fn swallow_lf(&mut self, byte: u8) -> bool {
        let swallow = self.after_cr && byte == b'\n';
        self.after_cr = byte == b'\r';
        swallow
    }

    /// Takes one typed byte (after [`LineEditor::swallow_lf`]).
    pub fn key(&mut self, byte: u8) -> Key {
        match byte {
            b'\r' | b'\n' => {
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                Key::Enter(line)
            }
            0x7f | 0x08 => {
                if self.line.is_empty() {
                    return Key::Echo(Vec::new());
                }
                // One character, however many UTF-8 bytes it took.
                while let Some(last) = self.line.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
                Key::Echo(b"\x08 \x08".to_vec())
            }
            0x04 if self.line.is_empty() => Key::EndOfInput,
            0x03 => {
                // Ctrl-C drops the line, as FortiOS does.
                self.line.clear();
                Key::Enter(String::new())
            }
            b'\t' => {
                self.line.push(b' ');
                Key::Echo(vec![b' '])
            }
            byte if byte < 0x20 => Key::Echo(Vec::new()),
            byte => {
                self.line.push(byte);
                Key::Echo(vec![byte])
            }
        }
    }
}

/// The lines of one output not shown yet, and how many fit on a page.
#[derive(Debug)]
pub struct Pager {
    waiting: VecDeque<String>,
    page: usize,
}

/// What the pager prints for one key, and whether it is done.
#[derive(Debug, PartialEq, Eq)]
pub struct Paged {
    pub text: String,
    pub done: bool,
}

impl Pager {
    /// Shows `output` (lines ending in `\n`) a page at a time on a terminal `height` rows
    /// high: one page now, then [`MORE`], or everything when it fits.
    pub fn start(output: &str, height: u32) -> (Option<Pager>, String) {
        let page = (height.max(2) - 1) as usize;
        let mut pager = Pager {
            waiting: output.lines().map(str::to_owned).collect(),
            page,
        };
        if pager.waiting.len() <= page {
            return (None, crlf(output));
        }
        let text = pager.show(page);
        (Some(pager), text)
    }

    /// Space shows the next page, Enter the next line, `q` stops; other keys do nothing.
    pub fn key(&mut self, byte: u8) -> Paged {
        let count = match byte {
            b' ' => self.page,
            b'\r' | b'\n' => 1,
            b'q' | b'Q' | 0x03 => {
                self.waiting.clear();
                return Paged {
                    text: ERASE_MORE.to_owned(),
                    done: true,
                };
            }
            _ => {
                return Paged {
                    text: String::new(),
                    done: false,
                };
            }
        };
        let mut text = ERASE_MORE.to_owned();
        text.push_str(&self.show(count));
        Paged {
            text,
            done: self.waiting.is_empty(),
        }
    }

    /// The next `count` lines, followed by [`MORE`] while lines remain.
    fn show(&mut self, count: usize) -> String {
        let mut text = String::new();
        for line in self.waiting.drain(..count.min(self.waiting.len())) {
            text.push_str(&line);
            text.push_str("\r\n");
        }
        if !self.waiting.is_empty() {
            text.push_str(MORE);
        }
        text
    }
}

/// `text` with every line ending in `\r\n`, as a terminal expects.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x55),
            failure_persistence: None,
            ..Config::default()
        })]

        /// Any bytes a client sends, typed at the prompt or at `--More--`, give echoes,
        /// lines or the end of input; never a panic, and the pager always ends.
        #[test]
        fn any_bytes_typed_are_handled(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            output in "(\\PC{0,20}\n){0,60}",
            height in any::<u32>(),
        ) {
            let mut editor = LineEditor::default();
            let (mut pager, _) = Pager::start(&output, height);
            for &byte in &bytes {
                if editor.swallow_lf(byte) {
                    continue;
                }
                match pager.as_mut() {
                    Some(paging) => {
                        if paging.key(byte).done {
                            pager = None;
                        }
                    }
                    None => {
                        if editor.key(byte) == Key::EndOfInput {
                            break;
                        }
                    }
                }
            }
            if let Some(mut paging) = pager {
                let mut rounds = 0;
                while !paging.key(b' ').done {
                    rounds += 1;
                    prop_assert!(rounds <= 60, "the pager never ends");
                }
            }
        }
    }

    fn typed(editor: &mut LineEditor, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        for &byte in bytes {
            if !editor.swallow_lf(byte) {
                keys.push(editor.key(byte));
            }
        }
        keys
    }

    fn lines(keys: &[Key]) -> Vec<&str> {
        keys.iter()
            .filter_map(|key| match key {
                Key::Enter(line) => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let mut editor = LineEditor::default();
        let keys = typed(&mut editor, b"a\rb\nc\r\nd\n\n");
        assert_eq!(lines(&keys), ["a", "b", "c", "d", ""]);
    }

    #[test]
    fn backspace_removes_one_character_and_echoes_the_erase() {
        let mut editor = LineEditor::default();
        let keys = typed(&mut editor, "shox\x7fw é\x08\x08x\r".as_bytes());
        assert_eq!(lines(&keys), ["showx"]);
        assert_eq!(keys[4], Key::Echo(b"\x08 \x08".to_vec()));
        assert_eq!(keys[0], Key::Echo(b"s".to_vec()));
        // Backspace on an empty line echoes nothing.
        assert_eq!(editor.key(0x7f), Key::Echo(Vec::new()));
    }

    #[test]
    fn ctrl_d_ends_input_only_on_an_empty_line() {
        let mut editor = LineEditor::default();
        assert_eq!(
            typed(&mut editor, b"ge\x04"),
            [
                Key::Echo(b"g".to_vec()),
                Key::Echo(b"e".to_vec()),
                Key::Echo(Vec::new())
            ]
        );
        assert_eq!(lines(&typed(&mut editor, b"t\r")), ["get"]);
        assert_eq!(editor.key(0x04), Key::EndOfInput);
    }

    #[test]
    fn a_short_output_is_printed_whole_with_crlf() {
        let (pager, text) = Pager::start("a\nb\n", 3);
        assert!(pager.is_none());
        assert_eq!(text, "a\r\nb\r\n");
    }

    #[test]
    fn a_long_output_pages_by_space_enter_and_stops_on_q() {
        let output: String = (1..=7).map(|n| format!("l{n}\n")).collect();
        let (pager, text) = Pager::start(&output, 3);
        let mut pager = pager.expect("7 lines do not fit on 2");
        assert_eq!(text, "l1\r\nl2\r\n--More-- ");
        let next = pager.key(b'\r');
        assert_eq!(next.text, format!("{ERASE_MORE}l3\r\n--More-- "));
        assert!(!next.done);
        assert_eq!(pager.key(b'x').text, "");
        let page = pager.key(b' ');
        assert_eq!(page.text, format!("{ERASE_MORE}l4\r\nl5\r\n--More-- "));
        let stop = pager.key(b'q');
        assert!(stop.done);
        assert_eq!(stop.text, ERASE_MORE);

        let (pager, _) = Pager::start(&output, 5);
        let last = pager.unwrap().key(b' ');
        assert_eq!(last.text, format!("{ERASE_MORE}l5\r\nl6\r\nl7\r\n"));
        assert!(last.done);
    }
}

//! Rules of `[admin]` and `[[api_user]]`: the accounts every node knows from the start.
//! Names are FortiOS account names, the password fits FortiOS's limit, API user names are
//! unique and a fixed key looks like a key.

use std::collections::HashSet;

use toml::Spanned;

use crate::domain::{MAX_ACCOUNT_NAME_LEN, MAX_API_KEY_LEN, MAX_PASSWORD_LEN, MIN_API_KEY_LEN, is_api_key};

use super::file::{AdminTable, ApiUserTable, Read};
use super::reader::Reader;
use super::seen::FirstSeen;
use super::spec::{AdminSpec, ApiUserSpec, DEFAULT_ACCPROFILE, DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USER};
use super::suggest::unused_name;

impl Reader<'_> {
    /// The administrator, with the defaults filled in.
    pub(super) fn admin_spec(&mut self, admin: Option<Read<AdminTable>>) -> AdminSpec {
        let Some(admin) = admin else {
            return AdminSpec::default();
        };
        if let Some(user) = &admin.table.user {
            self.check_account_name("[admin] user", "admin", user);
        }
        if let Some(password) = &admin.table.password {
            let value = password.get_ref();
            if value.chars().count() > MAX_PASSWORD_LEN || value.chars().any(char::is_control) {
                self.report(
                    &password.span(),
                    "the admin password is longer than FortiOS allows or holds control characters",
                    format!("write a password of at most {MAX_PASSWORD_LEN} printable characters"),
                );
            }
        }
        AdminSpec {
            user: admin
                .table
                .user
                .map_or_else(|| DEFAULT_ADMIN_USER.to_owned(), Spanned::into_inner),
            password: admin
                .table
                .password
                .map_or_else(|| DEFAULT_ADMIN_PASSWORD.to_owned(), Spanned::into_inner),
        }
    }

    /// The API users, in file order; `None` while one lacks its name.
    pub(super) fn api_user_specs(
        &mut self,
        users: Option<Vec<Read<ApiUserTable>>>,
    ) -> Option<Vec<ApiUserSpec>> {
        let users = users.unwrap_or_default();
        let names: Vec<String> = users
            .iter()
            .filter_map(|read| read.table.name.as_ref().map(|name| name.get_ref().clone()))
            .collect();
        let taken: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut seen = FirstSeen::new();
        let mut keys = HashSet::new();
        for read in &users {
            let table = &read.table;
            if let Some(name) = &table.name {
                self.check_account_name("api_user name", "automation", name);
                if let Some(first) = seen.repeat(name.get_ref().clone(), name.span()) {
                    let first_line = self.line(first);
                    self.report(
                        &name.span(),
                        format!(
                            "two [[api_user]] are named \"{}\": line {first_line} and line {}",
                            name.get_ref(),
                            self.line(&name.span())
                        ),
                        format!(
                            "API user names are unique; e.g. name = \"{}\"",
                            unused_name(name.get_ref(), &taken)
                        ),
                    );
                }
            }
            if let Some(accprofile) = &table.accprofile {
                self.check_account_name("accprofile", DEFAULT_ACCPROFILE, accprofile);
            }
            if let Some(key) = &table.key {
                self.check_api_key(key, &mut keys);
            }
        }
        users
            .into_iter()
            .map(|read| {
                Some(ApiUserSpec {
                    name: read.table.name?.into_inner(),
                    key: read.table.key.map(Spanned::into_inner),
                    accprofile: read
                        .table
                        .accprofile
                        .map_or_else(|| DEFAULT_ACCPROFILE.to_owned(), Spanned::into_inner),
                })
            })
            .collect()
    }

    /// A fixed API key: letters and digits of a workable length, used by one user only.
    fn check_api_key(&mut self, key: &Spanned<String>, keys: &mut HashSet<String>) {
        let value = key.get_ref();
        if !is_api_key(value) {
            self.report(
                &key.span(),
                format!("API key of {} characters is not {MIN_API_KEY_LEN} to {MAX_API_KEY_LEN} letters and digits", value.chars().count()),
                "write 30 letters and digits, as `execute api-user generate-key` makes, e.g. key = \"r7Qm2vXk9sLp4tWz8nBc3hJd6fGy1a\"",
            );
        } else if !keys.insert(value.clone()) {
            self.report(
                &key.span(),
                "two [[api_user]] have the same key",
                "give every API user its own key",
            );
        }
    }

    /// A FortiOS account name: 1 to [`MAX_ACCOUNT_NAME_LEN`] characters without spaces,
    /// quotes or control characters.
    fn check_account_name(&mut self, what: &str, example: &str, name: &Spanned<String>) {
        let value = name.get_ref();
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '\'';
        if value.is_empty() || value.chars().count() > MAX_ACCOUNT_NAME_LEN || value.chars().any(bad) {
            self.report(
                &name.span(),
                format!("{what} \"{value}\" is not a FortiOS account name"),
                format!(
                    "write 1 to {MAX_ACCOUNT_NAME_LEN} characters without spaces or quotes, e.g. \"{example}\""
                ),
            );
        }
    }
}

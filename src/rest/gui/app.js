// The fabricsim GUI: FortiOS's pages for the FortiClient EMS connector. Every fact shown
// and every change made goes through the node's REST API (`/api/v2/...`), with the
// session `/logincheck` opened: the CLI's rules check each change and its words refuse it.
"use strict";

const fabricsim = (() => {
  const CMDB = "/api/v2/cmdb";
  const MONITOR = "/api/v2/monitor";
  const FCTEMS = CMDB + "/endpoint-control/fctems";
  // How often a page re-reads what it shows (the connector's status, the topology).
  const POLL_MS = 1000;
  // FortiOS's words (docs/fortios.md#web-gui).
  const CLOUD_RULE =
    "FortiClient EMS Cloud can only be configured when the FortiGate is registered to " +
    "FortiCloud and the EMS Cloud entitlement is verified.";
  const CA_UNKNOWN =
    "The server certificate cannot be authenticated with installed CA certificates. " +
    "Please install its CA certificates on this FortiGate.";

  let pollTimer = null;

  // --- the REST API -------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)ccsrftoken="?([^";]*)"?/);
    return match ? match[1] : "";
  }

  // One API call: `{ ok, status, data }`, where `data` is FortiOS's envelope. A lost
  // session goes back to the login page.
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFTOKEN"] = csrfToken();
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      location.href = "/login";
      throw new Error("the session has ended");
    }
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    return { ok: response.ok && data.status !== "error", status: response.status, data };
  }

  // Why a call failed, as the CLI says it, else the HTTP status.
  function failure(reply) {
    return reply.data.cli_error || `The request failed (HTTP ${reply.status}).`;
  }

  async function results(path) {
    const reply = await call("GET", path);
    if (!reply.ok) throw new Error(failure(reply));
    return reply.data.results;
  }

  // --- small DOM helpers --------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function show(...nodes) {
    const content = document.getElementById("content");
    content.replaceChildren(...nodes.filter((node) => node !== null));
  }

  function go(path) {
    history.pushState(null, "", path);
    render();
  }

  function poll(task) {
    stopPolling();
    const tick = async () => {
      try {
        await task();
      } catch (error) {
        console.warn(error);
      }
      pollTimer = setTimeout(tick, POLL_MS);
    };
    pollTimer = setTimeout(tick, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  }

  // --- the login page -----------------------------------------------------------------

  function login() {
    const form = document.getElementById("login-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = new URLSearchParams({
        username: document.getElementById("username").value,
        secretkey: document.getElementById("secretkey").value,
        ajax: "1",
      });
      const response = await fetch("/logincheck", { method: "POST", body, credentials: "same-origin" });
      const text = await response.text();
      if (text.startsWith("1")) {
        location.href = "/ng/";
      } else {
        const error = document.getElementById("login-error");
        error.textContent = "Authentication failure.";
        error.hidden = false;
      }
    });
  }

  // --- the application ----------------------------------------------------------------

  async function start() {
    document.querySelector("nav.menu").addEventListener("click", (event) => {
      const link = event.target.closest("a");
      if (link) {
        event.preventDefault();
        go(link.getAttribute("href"));
      }
    });
    document.getElementById("logout").addEventListener("click", async () => {
      await fetch("/logout", { method: "POST", credentials: "same-origin" });
      location.href = "/login";
    });
    window.addEventListener("popstate", render);
    const status = await call("GET", MONITOR + "/system/status");
    if (status.ok) {
      const device = status.data.results;
      document.getElementById("device").textContent =
        `${device.hostname}  ${status.data.serial}  ${status.data.version}`;
    }
    render();
  }

  function render() {
    stopPolling();
    const path = location.pathname.replace(/\/+$/, "");
    for (const link of document.querySelectorAll("nav.menu a")) {
      link.classList.toggle("active", path.startsWith(link.getAttribute("href")));
    }
    const pages = {
      "/ng/system/featurevisibility": featureVisibility,
      "/ng/fabric/connectors": connectors,
      "/ng/fabric/connectors/fctems": connector,
      "/ng/fabric/topology": topology,
    };
    const page = pages[path] || topology;
    page().catch((error) => show(el("p", { class: "error", id: "page-error", text: error.message })));
  }

  // System > Feature Visibility: the Endpoint Control switch (`gui-endpoint-control`).
  async function featureVisibility() {
    const [settings, schema] = await Promise.all([
      results(CMDB + "/system/settings"),
      results(CMDB + "/system/settings?action=schema"),
    ]);
    const readonly = schema.readonly_reason;
    const toggle = el("input", {
      type: "checkbox",
      id: "feature-endpoint-control",
      checked: settings[0]["gui-endpoint-control"] === "enable",
      disabled: Boolean(readonly),
    });
    const message = el("p", { id: "message" });
    const apply = el("button", {
      type: "button",
      id: "apply",
      class: "primary",
      text: "Apply",
      disabled: Boolean(readonly),
      onclick: async () => {
        const value = toggle.checked ? "enable" : "disable";
        const reply = await call("PUT", CMDB + "/system/settings", { "gui-endpoint-control": value });
        message.className = reply.ok ? "ok" : "error";
        message.textContent = reply.ok ? "Configuration saved." : failure(reply);
      },
    });
    show(
      el("h1", { text: "Feature Visibility" }),
      readonly ? el("p", { class: "notice", id: "readonly-reason", text: readonly }) : null,
      el("div", { class: "form" },
        el("label", { for: "feature-endpoint-control", text: "Endpoint Control" }),
        toggle),
      el("div", { class: "buttons" }, apply),
      message,
    );
  }

  // Security Fabric > Fabric Connectors: one card per connector kind; the FortiClient EMS
  // card only while Endpoint Control is visible.
  async function connectors() {
    const [settings, entries, statuses] = await Promise.all([
      results(CMDB + "/system/settings"),
      results(FCTEMS),
      results(MONITOR + "/endpoint-control/ems/status"),
    ]);
    const visible = settings[0]["gui-endpoint-control"] === "enable";
    const cards = el("div", { class: "cards" });
    if (visible) {
      const open = () => go("/ng/fabric/connectors/fctems");
      const rows = entries.map((entry) => {
        const state = statuses.find((s) => s.ems_name === entryLabel(entry));
        const words = state ? `${state.connection_label}, ${state.certificate_label}` : "Unknown";
        return el("li", { text: `${entryLabel(entry)} (${entry.server || "EMS Cloud"}): ${words}` });
      });
      cards.append(el("div", {
        class: "card",
        id: "card-fctems",
        tabindex: "0",
        ondblclick: open,
        onkeydown: (event) => { if (event.key === "Enter") open(); },
      },
      el("h3", { text: "FortiClient EMS" }),
      rows.length ? el("ul", {}, ...rows) : el("p", { text: "Not configured" })));
    }
    show(
      el("h1", { text: "Fabric Connectors" }),
      visible ? null : el("p", {
        class: "notice",
        id: "endpoint-control-hidden",
        text: "FortiClient EMS is hidden: enable Endpoint Control under System > Feature Visibility.",
      }),
      cards,
    );
  }

  // The name an entry is reported under: its name (or, keyed by ems-id, its name field).
  function entryLabel(entry) {
    return entry.name || String(entry["ems-id"]);
  }

  // The FortiClient EMS connector: the entries, one form, the certificate window and the
  // FortiClient EMS Status section.
  async function connector() {
    const [schema, entries, license] = await Promise.all([
      results(FCTEMS + "?action=schema"),
      results(FCTEMS),
      results(MONITOR + "/license/status"),
    ]);
    const mkey = schema.mkey;
    const wanted = new URLSearchParams(location.search).get("entry");
    const current = wanted === "new"
      ? null
      : entries.find((entry) => String(entry[mkey]) === wanted) || (wanted ? null : entries[0] || null);
    const readonly = schema.readonly_reason;
    const list = el("div", { class: "entries" },
      ...entries.map((entry) => el("a", {
        href: `/ng/fabric/connectors/fctems?entry=${encodeURIComponent(entry[mkey])}`,
        id: `entry-${entry[mkey]}`,
        class: current && entry[mkey] === current[mkey] ? "active" : false,
        text: entryLabel(entry),
        onclick: (event) => { event.preventDefault(); go(event.currentTarget.getAttribute("href")); },
      })),
      readonly ? null : el("button", {
        type: "button",
        id: "create-new",
        text: "Create New",
        onclick: () => go("/ng/fabric/connectors/fctems?entry=new"),
      }));
    const form = connectorForm(schema, entries, current, license.fortiems_cloud);
    const section = current ? statusSection(mkey, current, Boolean(readonly)) : null;
    show(
      el("h1", { text: current ? "Edit Fabric Connector" : "New Fabric Connector" }),
      readonly ? el("p", { class: "notice", id: "readonly-reason", text: readonly }) : null,
      el("div", { class: "split" }, list, el("div", {}, form, section ? section.node : null)),
    );
    if (section) {
      await section.refresh();
      poll(section.refresh);
    }
  }

  function connectorForm(schema, entries, current, emsCloud) {
    const fields = schema.children;
    const readonly = Boolean(schema.readonly_reason);
    // A new connector starts enabled, as the GUI's Status switch does; every other field
    // starts at the schema's default.
    const value = (name) => {
      if (current) return current[name];
      if (name === "status") return "enable";
      return fields[name] && fields[name].default;
    };
    const isCloud = value("fortinetone-cloud-authentication") === "enable";
    const error = el("p", { class: "error", id: "form-error", hidden: true });
    const input = (name, type) => el("input", {
      type,
      id: `field-${name}`,
      value: value(name) === undefined ? "" : String(value(name)),
      disabled: readonly || (name === schema.mkey && current !== null),
    });
    const checkbox = (name) => el("input", {
      type: "checkbox",
      id: `field-${name}`,
      checked: value(name) === "enable",
      disabled: readonly,
    });
    const typeEms = el("input", { type: "radio", name: "type", id: "type-ems", checked: !isCloud, disabled: readonly });
    const typeCloud = el("input", {
      type: "radio",
      name: "type",
      id: "type-cloud",
      checked: isCloud,
      disabled: readonly || (!isCloud && !emsCloud.configurable),
    });
    const cloudReason = !readonly && !emsCloud.configurable && !isCloud
      ? el("p", { class: "notice wide", id: "cloud-reason", text: `${CLOUD_RULE}\n${emsCloud.reason}` })
      : null;
    const rows = [];
    const row = (label, control, id) => {
      const wrapper = el("div", { id: id || false, style: "display: contents" },
        el("label", { for: control.id, text: label }), control);
      rows.push(wrapper);
      return wrapper;
    };
    row("Type", el("span", { id: "field-type" },
      typeEms, el("label", { for: "type-ems", text: " FortiClient EMS  " }),
      typeCloud, el("label", { for: "type-cloud", text: " FortiClient EMS Cloud" })));
    if (cloudReason) rows.push(cloudReason);
    if (fields.status) row("Status", checkbox("status"));
    row("Name", input("name", "text"));
    const server = row("IP/Domain name", input("server", "text"), "row-server");
    const port = row("HTTPS port", input("https-port", "number"), "row-https-port");
    row("EMS Threat Feed", checkbox("pull-malware-hash"));
    row("Source IP", input("source-ip", "text"));
    const showServer = () => {
      const cloud = typeCloud.checked;
      server.style.display = cloud ? "none" : "contents";
      port.style.display = cloud ? "none" : "contents";
    };
    typeEms.addEventListener("change", showServer);
    typeCloud.addEventListener("change", showServer);
    showServer();

    const ok = el("button", {
      type: "button",
      id: "ok",
      class: "primary",
      text: "OK",
      disabled: readonly,
      onclick: async () => {
        error.hidden = true;
        const cloud = typeCloud.checked;
        const body = {
          name: document.getElementById("field-name").value.trim(),
          "fortinetone-cloud-authentication": cloud ? "enable" : "disable",
          "pull-malware-hash": document.getElementById("field-pull-malware-hash").checked ? "enable" : "disable",
          "source-ip": document.getElementById("field-source-ip").value.trim() || "0.0.0.0",
        };
        if (!cloud) {
          body.server = document.getElementById("field-server").value.trim();
          body["https-port"] = Number(document.getElementById("field-https-port").value);
        }
        if (fields.status) body.status = document.getElementById("field-status").checked ? "enable" : "disable";
        const reply = await save(schema, entries, current, body);
        if (!reply.ok) {
          error.textContent = failure(reply);
          error.hidden = false;
          return;
        }
        const key = current ? current[schema.mkey] : reply.data.mkey;
        history.pushState(null, "", `/ng/fabric/connectors/fctems?entry=${encodeURIComponent(key)}`);
        await render();
        // A disabled slot is not used, so there is no certificate to verify yet.
        if (body.status !== "disable") await verifyCertificate(key, { onlyUnverified: true });
      },
    });
    const cancel = el("button", { type: "button", id: "cancel", text: "Cancel", onclick: () => go("/ng/fabric/connectors") });
    return el("div", {},
      el("div", { class: "form", id: "connector-form" }, ...rows),
      el("div", { class: "buttons" }, ok, cancel),
      error);
  }

  // Creates or changes the entry: POST to the table, or PUT to the entry. A table keyed by
  // ems-id takes the first free slot of its range.
  async function save(schema, entries, current, body) {
    if (current) return call("PUT", `${FCTEMS}/${encodeURIComponent(current[schema.mkey])}`, body);
    if (schema.mkey !== "name") {
      const key = schema.children[schema.mkey];
      const taken = new Set(entries.map((entry) => Number(entry[schema.mkey])));
      let slot = key["min-value"];
      while (taken.has(slot) && slot <= key["max-value"]) slot += 1;
      body[schema.mkey] = slot;
    }
    return call("POST", FCTEMS, body);
  }

  // The FortiClient EMS Status section of entry `current`: Connection with Refresh,
  // Certificate with Authorize, the FortiGate's authorization on the EMS.
  function statusSection(mkey, current, readonly) {
    const key = current[mkey];
    const field = (id) => el("span", { id });
    const connection = field("status-connection");
    const certificate = field("status-certificate");
    const authorization = field("status-authorization");
    const serial = field("status-ems-serial");
    const detail = field("status-detail");
    const checked = field("status-checked");
    const authorize = el("button", {
      type: "button",
      id: "authorize",
      text: "Authorize",
      hidden: true,
      onclick: () => verifyCertificate(key, { onlyUnverified: false }),
    });
    const refreshing = el("span", { id: "refreshing", text: "" });
    const fill = (state) => {
      connection.textContent = state.connection_label;
      connection.className = state.connection === "connected" ? "ok" : "bad";
      certificate.textContent = state.certificate_label;
      certificate.className = state.certificate === "authorized" ? "ok" : "bad";
      authorization.textContent = state.authorization_label;
      authorization.className = state.authorization === "authorized" ? "ok" : "bad";
      serial.textContent = state.ems_serial || "Unknown";
      detail.textContent = state.detail;
      checked.textContent = state.last_check || "Never";
      // A certificate the EMS presented and this FortiGate does not trust yet.
      authorize.hidden = readonly || ["authorized", "unknown"].includes(state.certificate);
    };
    const refreshButton = el("button", {
      type: "button",
      id: "refresh",
      text: "Refresh",
      onclick: async () => {
        refreshing.textContent = " Checking...";
        const reply = await call("POST", MONITOR + "/endpoint-control/ems/test-connectivity", { ems_name: String(key) });
        refreshing.textContent = "";
        if (reply.ok) fill(reply.data.results);
        else detail.textContent = failure(reply);
      },
    });
    const node = el("div", { class: "status", id: "ems-status" },
      el("h2", { text: "FortiClient EMS Status" }),
      el("dl", {},
        el("dt", { text: "Connection" }), el("dd", {}, connection, refreshButton, refreshing),
        el("dt", { text: "Certificate" }), el("dd", {}, certificate, authorize),
        el("dt", { text: "FortiGate authorization" }), el("dd", {}, authorization),
        el("dt", { text: "EMS serial" }), el("dd", {}, serial),
        el("dt", { text: "Detail" }), el("dd", {}, detail),
        el("dt", { text: "Last checked" }), el("dd", {}, checked)));
    // A disabled slot is not checked, so the monitor does not list it.
    const unused = () => {
      for (const field of [connection, certificate, authorization, serial, checked]) {
        field.textContent = "-";
        field.className = "";
      }
      detail.textContent = "This FortiGate does not check a disabled EMS entry.";
      authorize.hidden = true;
    };
    const refresh = async () => {
      const reply = await call("GET", `${MONITOR}/endpoint-control/ems/status?ems_name=${encodeURIComponent(key)}`);
      if (reply.ok && reply.data.results.length) fill(reply.data.results[0]);
      else if (reply.status === 404) unused();
    };
    return { node, refresh };
  }

  // The window that verifies the EMS server certificate: the certificate the EMS presents
  // to this node, Accept (trust it fabric-wide, as `y` to `execute fctems verify`) or Deny
  // (change nothing). With `onlyUnverified`, an entry already verified opens no window.
  async function verifyCertificate(key, { onlyUnverified }) {
    const name = String(key);
    if (onlyUnverified) {
      const status = await call("GET", `${MONITOR}/endpoint-control/ems/cert-status?ems_name=${encodeURIComponent(name)}`);
      if (status.ok && status.data.results.verified) return;
    }
    const offer = await call("POST", MONITOR + "/endpoint-control/ems/verify-cert", { ems_name: name });
    if (!offer.ok) {
      showModal(el("h2", { text: "Verify EMS Server Certificate" }),
        el("p", { class: "error", id: "cert-error", text: failure(offer) }),
        el("div", { class: "buttons" }, el("button", { type: "button", id: "cert-close", text: "Close", onclick: closeModal })));
      return;
    }
    const cert = offer.data.results.certificate;
    const row = (label, id, text) => el("tr", {}, el("td", { text: label }), el("td", { id, text: text || "" }));
    const accept = el("button", {
      type: "button",
      id: "cert-accept",
      class: "primary",
      text: "Accept",
      onclick: async () => {
        const reply = await call("POST", MONITOR + "/endpoint-control/ems/verify-cert", {
          ems_name: name,
          fingerprint: cert.fingerprint,
        });
        if (reply.ok) {
          closeModal();
          await render();
        } else {
          const error = document.getElementById("cert-error");
          error.textContent = failure(reply);
          error.hidden = false;
        }
      },
    });
    showModal(
      el("h2", { text: "Verify EMS Server Certificate" }),
      el("p", { text: "EMS configuration needs user to confirm server certificate." }),
      cert.trusted_by_ca ? null : el("p", { class: "notice", id: "cert-warning", text: CA_UNKNOWN }),
      el("table", { id: "cert-details" },
        row("Subject", "cert-subject", cert.subject),
        row("Issuer", "cert-issuer", cert.issuer),
        row("Valid from", "cert-valid-from", cert.valid_from),
        row("Valid to", "cert-valid-to", cert.valid_to),
        row("Fingerprint", "cert-fingerprint", cert.fingerprint),
        row("Serial number", "cert-serial", cert.serial_number)),
      el("p", { class: "error", id: "cert-error", hidden: true }),
      el("div", { class: "buttons" }, accept,
        el("button", { type: "button", id: "cert-deny", text: "Deny", onclick: closeModal })),
    );
  }

  function showModal(...children) {
    closeModal();
    document.body.append(el("div", { class: "modal", id: "cert-dialog" }, el("div", {}, ...children)));
  }

  function closeModal() {
    const modal = document.getElementById("cert-dialog");
    if (modal) modal.remove();
  }

  // Security Fabric > Physical Topology: the root and its members as a tree, each with its
  // serial, revision, whether it converged and its EMS connectors' state, re-read every
  // second.
  async function topology() {
    const container = el("div", { class: "tree", id: "topology" });
    const summary = el("p", { id: "fabric-summary" });
    show(el("h1", { text: "Physical Topology" }), summary, container);
    const draw = async () => {
      const view = await results(MONITOR + "/system/csf/topology");
      const revision = view.revision === null ? "unknown" : view.revision;
      summary.textContent = `Fabric ${view.fabric} (root: ${view.root}), revision ${revision}: ` +
        (view.converged ? "converged" : "not converged");
      summary.className = view.converged ? "ok" : "bad";
      const byName = new Map(view.nodes.map((node) => [node.name, node]));
      const children = (parent) => view.nodes.filter((node) => view.upstream[node.name] === parent);
      const branch = (node) => el("li", {}, device(node), list(children(node.name)));
      const list = (nodes) => (nodes.length ? el("ul", {}, ...nodes.map(branch)) : null);
      container.replaceChildren(list([byName.get(view.root)].filter(Boolean)) || "");
    };
    await draw();
    poll(draw);
  }

  function device(node) {
    const ems = node.ems.map((state) => el("div", {
      class: state.connection === "connected" && state.certificate === "authorized" ? "ok" : "bad",
      text: `${state.name}: ${state.connection} / ${state.certificate} / ${state.device}`,
    }));
    return el("div", {
      class: node.converged ? "device converged" : "device",
      id: `node-${node.name}`,
    },
    el("div", { class: "name", text: `${node.name} (${node.role})` }),
    el("div", { class: "meta", text: `Serial ${node.serial}, revision ${node.revision === null ? "unknown" : node.revision}, ` +
      `${node.converged ? "converged" : "not converged"}, Raft ${node.raft.state}` }),
    node.error ? el("div", { class: "bad", text: node.error }) : null,
    ...ems);
  }

  return { login, start };
})();

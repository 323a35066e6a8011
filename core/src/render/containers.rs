//! The init container `linkerd-init` (docs/behaviour.md §7.6), its CNI replacement
//! `linkerd-network-validator` (docs/behaviour.md §7.8) and the `linkerd-debug` container
//! (docs/behaviour.md §7.10).

use serde_json::{json, Map, Value};

use super::{image, resources, PodFacts, RenderError};
use crate::annotations as a;
use crate::config::Values;

/// `linkerd-init`, which sets up the iptables redirection.
pub fn init_container(values: &Values, facts: &PodFacts) -> Result<Value, RenderError> {
    let p = &values.proxy;
    let pi = &values.proxy_init;
    let mut args: Vec<String> = Vec::new();
    match pi.iptables_mode.as_str() {
        "" | "legacy" => {}
        "nft" => args.extend(
            [
                "--firewall-bin-path",
                "iptables-nft",
                "--firewall-save-bin-path",
                "iptables-nft-save",
            ]
            .map(String::from),
        ),
        other => return Err(RenderError::IptablesMode(other.to_string())),
    }
    if values.disable_ipv6 {
        args.push("--ipv6=false".into());
    }
    args.extend([
        "--incoming-proxy-port".into(),
        p.ports.inbound.to_string(),
        "--outgoing-proxy-port".into(),
        p.ports.outbound.to_string(),
        "--proxy-uid".into(),
        p.uid.to_string(),
    ]);
    if p.gid >= 0 {
        args.extend(["--proxy-gid".into(), p.gid.to_string()]);
    }
    let mut inbound_ignore = format!("{},{}", p.ports.control, p.ports.admin);
    if !pi.ignore_inbound_ports.is_empty() {
        inbound_ignore = format!("{inbound_ignore},{}", pi.ignore_inbound_ports);
    }
    args.extend(["--inbound-ports-to-ignore".into(), inbound_ignore]);
    if !pi.ignore_outbound_ports.is_empty() {
        args.extend([
            "--outbound-ports-to-ignore".into(),
            pi.ignore_outbound_ports.clone(),
        ]);
    }
    let close_wait = pi.close_wait_timeout_secs != 0;
    if close_wait {
        if !pi.run_as_root {
            return Err(RenderError::CloseWaitNeedsRoot);
        }
        args.extend([
            "--timeout-close-wait-secs".into(),
            pi.close_wait_timeout_secs.to_string(),
        ]);
    }
    if !pi.log_format.is_empty() {
        args.extend(["--log-format".into(), pi.log_format.clone()]);
    }
    if !pi.log_level.is_empty() {
        args.extend(["--log-level".into(), pi.log_level.clone()]);
    }
    if !pi.skip_subnets.is_empty() {
        args.extend(["--subnets-to-ignore".into(), pi.skip_subnets.clone()]);
    }

    let privileged = close_wait || pi.privileged;
    let mut caps = Map::new();
    let mut add = vec!["NET_ADMIN".to_string(), "NET_RAW".to_string()];
    if let Some(extra) = &facts.init_capabilities {
        add.extend(extra.add.iter().cloned());
        if !extra.drop.is_empty() {
            caps.insert("drop".into(), json!(extra.drop));
        }
    }
    caps.insert("add".into(), json!(add));
    let mut sc = Map::new();
    sc.insert("allowPrivilegeEscalation".into(), privileged.into());
    sc.insert("capabilities".into(), sort_keys(caps));
    sc.insert("privileged".into(), privileged.into());
    sc.insert("readOnlyRootFilesystem".into(), true.into());
    let or_nobody = |id: i64| if id == 0 { 65534 } else { id };
    if pi.run_as_root {
        sc.insert("runAsGroup".into(), 0.into());
        sc.insert("runAsNonRoot".into(), false.into());
        sc.insert("runAsUser".into(), 0.into());
    } else {
        sc.insert("runAsGroup".into(), or_nobody(pi.run_as_group).into());
        sc.insert("runAsNonRoot".into(), true.into());
        sc.insert("runAsUser".into(), or_nobody(pi.run_as_user).into());
    }
    sc.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));

    let mut mounts = vec![json!({
        "mountPath": pi.xt_mount_path.mount_path,
        "name": pi.xt_mount_path.name,
    })];
    if let Some(m) = &facts.sa_mount {
        mounts.push(m.clone());
    }

    let mut c = Map::new();
    c.insert("args".into(), json!(args));
    c.insert(
        "command".into(),
        json!(["/usr/lib/linkerd/linkerd2-proxy-init"]),
    );
    c.insert(
        "image".into(),
        image(&p.image.name, values.proxy_version()).into(),
    );
    c.insert("imagePullPolicy".into(), values.proxy_pull_policy().into());
    c.insert("name".into(), a::INIT_CONTAINER.into());
    if let Some(r) = resources(values) {
        c.insert("resources".into(), r);
    }
    c.insert("securityContext".into(), Value::Object(sc));
    c.insert(
        "terminationMessagePolicy".into(),
        "FallbackToLogsOnError".into(),
    );
    c.insert("volumeMounts".into(), Value::Array(mounts));
    Ok(Value::Object(c))
}

fn sort_keys(m: Map<String, Value>) -> Value {
    let mut entries: Vec<_> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

/// `linkerd-network-validator`, which checks the CNI plugin's redirection instead.
pub fn network_validator(values: &Values) -> Value {
    let nv = &values.network_validator;
    let ipv6 = !values.disable_ipv6;
    let connect = if !nv.connect_addr.is_empty() {
        nv.connect_addr.clone()
    } else if ipv6 {
        "[fd00::1]:20001".into()
    } else {
        "1.1.1.1:20001".into()
    };
    // Always port 4140, whatever the outbound port is (docs/differences.md Q-26).
    let listen = if !nv.listen_addr.is_empty() {
        nv.listen_addr.clone()
    } else if ipv6 {
        "[::]:4140".into()
    } else {
        "0.0.0.0:4140".into()
    };
    let sc = if nv.security_context.is_empty() {
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "runAsGroup": 65534,
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    } else {
        Value::Object(nv.security_context.clone())
    };
    let mut c = Map::new();
    c.insert(
        "args".into(),
        json!([
            "--log-format",
            nv.log_format,
            "--log-level",
            nv.log_level,
            "--connect-addr",
            connect,
            "--listen-addr",
            listen,
            "--timeout",
            nv.timeout
        ]),
    );
    c.insert(
        "command".into(),
        json!(["/usr/lib/linkerd/linkerd2-network-validator"]),
    );
    c.insert(
        "image".into(),
        image(&values.proxy.image.name, values.proxy_version()).into(),
    );
    c.insert("imagePullPolicy".into(), values.proxy_pull_policy().into());
    c.insert("name".into(), a::VALIDATOR_CONTAINER.into());
    if let Some(r) = resources(values) {
        c.insert("resources".into(), r);
    }
    c.insert("securityContext".into(), sc);
    Value::Object(c)
}

/// `linkerd-debug`, a toolbox container next to the app.
pub fn debug_container(values: &Values) -> Value {
    json!({
        "image": image(&values.debug_container.image.name, values.debug_version()),
        "imagePullPolicy": values.debug_pull_policy(),
        "livenessProbe": {"exec": {"command": ["true"]}},
        "name": a::DEBUG_CONTAINER,
        "readinessProbe": {"exec": {"command": ["true"]}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
}

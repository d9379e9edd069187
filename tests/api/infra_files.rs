//! The deployment files under `infra/` read against the server they deploy: Docker and
//! Kubernetes cannot run here, so these tests are what keeps the files honest.
//!
//! Every `SIGHTLINE_*` variable they name is a setting of `backend/src/config.rs` (the server
//! ignores an unknown variable, so a typo would otherwise go unnoticed), the values they set
//! parse, the probes are routes the server answers, the ports agree from the app's
//! `SIGHTLINE_LISTEN` through nginx and the Service, grace periods outlast the graceful stop,
//! the load balancers' limits match the server's, and every kustomization lists exactly the
//! manifests beside it. The files are read as text: no YAML or nginx parser, only the few
//! shapes these files use.

use sightline::config::{Settings, environment_variables};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::TestApp;

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn read(relative: &str) -> String {
    let path = infra().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `infra/`-relative paths of the files these tests read: the compose files, every
/// Kubernetes manifest (subdirectories included), nginx.conf and the Dockerfile.
fn deployment_files() -> Vec<String> {
    let mut files = vec!["nginx.conf".to_owned(), "Dockerfile".to_owned()];
    for entry in std::fs::read_dir(infra()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("compose") && name.ends_with(".yaml") {
            files.push(name);
        }
    }
    files.extend(yaml_files_under("k8s"));
    files.sort();
    files
}

fn yaml_files_under(relative: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(infra().join(relative)).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = format!("{relative}/{name}");
        if entry.file_type().unwrap().is_dir() {
            found.extend(yaml_files_under(&path));
        } else if name.ends_with(".yaml") {
            found.push(path);
        }
    }
    found
}

/// Every `SIGHTLINE_...` name in `text`, comments included (a comment naming a setting that
/// does not exist misleads as much as a wrong variable).
fn sightline_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("SIGHTLINE_").map(|i| i + from) {
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |i| i + at);
        let starts_a_word = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric());
        if starts_a_word {
            names.push(&text[at..end]);
        }
        from = end;
    }
    names
}

/// The environment a YAML file sets: `NAME: value` lines with an upper-case name (compose
/// `environment:` maps, ConfigMap `data:`, Secret `stringData:`) and `- name: NAME` followed
/// by `value: ...` (a container's `env:` list). Quotes and trailing comments are removed.
fn yaml_environment(text: &str) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- name: ") {
            if let Some(value) = lines
                .get(i + 1)
                .and_then(|next| next.trim().strip_prefix("value: "))
            {
                environment.insert(name.trim().to_owned(), scalar(value));
            }
            continue;
        }
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        let is_variable = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if is_variable {
            environment.insert(name.to_owned(), scalar(value));
        }
    }
    environment
}

/// A YAML scalar without its quotes or a trailing ` # comment`.
fn scalar(value: &str) -> String {
    let value = match value.find(" #") {
        Some(i) if !value.starts_with(['"', '\'']) => &value[..i],
        _ => value,
    };
    value.trim().trim_matches(['"', '\'']).to_owned()
}

/// The settings a deployment file's environment gives the server, through the server's own
/// parser. Values that compose substitutes at run time (`${...}`) are left out.
fn settings_of(file: &str, environment: &BTreeMap<String, String>) -> Settings {
    let given: BTreeMap<&str, &str> = environment
        .iter()
        .filter(|(_, value)| !value.contains("${"))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Settings::from_sources(None, |name| given.get(name).map(|v| (*v).to_owned()))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The lines indented under the first line whose text starts with `key` (a YAML block).
fn yaml_block<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let mut lines = text.lines();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let Some(head) = lines.by_ref().find(|l| l.trim_start().starts_with(key)) else {
        return Vec::new();
    };
    let depth = indent(head);
    lines
        .filter(|l| !l.trim().is_empty())
        .take_while(|l| indent(l) > depth)
        .collect()
}

/// The value of the first `key: value` line among `lines`.
fn yaml_value(lines: &[&str], key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    lines
        .iter()
        .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix(&prefix))
        .map(scalar)
}

fn number(file: &str, what: &str, value: Option<String>) -> u64 {
    let value = value.unwrap_or_else(|| panic!("{file}: no {what}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{file}: {what} `{value}` is not a number"))
}

/// `35s`, `2m`, `1m30s` or a bare number of seconds (compose and nginx durations).
fn duration(file: &str, value: &str) -> Duration {
    let mut seconds = 0;
    let mut digits = String::new();
    for c in value.trim().chars() {
        match c {
            '0'..='9' => digits.push(c),
            's' | 'm' | 'h' => {
                let n: u64 = digits
                    .parse()
                    .unwrap_or_else(|_| panic!("{file}: `{value}`"));
                seconds += n * match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                digits.clear();
            }
            _ => panic!("{file}: `{value}` is not a duration"),
        }
    }
    if !digits.is_empty() {
        seconds += digits.parse::<u64>().unwrap();
    }
    Duration::from_secs(seconds)
}

/// `1m`, `512k` or a number of bytes (nginx sizes).
fn size(file: &str, value: &str) -> usize {
    let value = value.trim();
    let (digits, unit) = match value.strip_suffix(['m', 'M']) {
        Some(d) => (d, 1024 * 1024),
        None => match value.strip_suffix(['k', 'K']) {
            Some(d) => (d, 1024),
            None => (value, 1),
        },
    };
    digits
        .parse::<usize>()
        .unwrap_or_else(|_| panic!("{file}: `{value}` is not a size"))
        * unit
}

/// nginx.conf without its comments.
fn nginx_conf() -> String {
    read("nginx.conf")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body of the first nginx block opened by a line starting with `head` (up to its
/// closing brace; the blocks these tests look into have no nested blocks).
fn nginx_block<'a>(conf: &'a str, head: &str) -> &'a str {
    let start = conf
        .lines()
        .find(|l| l.trim_start().starts_with(head))
        .and_then(|l| conf.find(l))
        .unwrap_or_else(|| panic!("nginx.conf: no `{head}` block"));
    let body = &conf[start..];
    let end = body.find('}').unwrap_or(body.len());
    &body[..end]
}

/// The argument of the first `directive ...;` in `block`.
fn nginx_directive<'a>(block: &'a str, directive: &str) -> Option<&'a str> {
    block.lines().find_map(|l| {
        l.trim()
            .strip_prefix(directive)
            .filter(|rest| rest.starts_with(' '))
            .map(|rest| rest.trim().trim_end_matches(';'))
    })
}

/// The environment of the Kubernetes pods: the ConfigMap's data.
fn k8s_settings() -> Settings {
    settings_of(
        "k8s/configmap.yaml",
        &yaml_environment(&read("k8s/configmap.yaml")),
    )
}

fn compose_settings(file: &str) -> Settings {
    settings_of(file, &yaml_environment(&read(file)))
}

fn compose_files() -> Vec<String> {
    deployment_files()
        .into_iter()
        .filter(|f| f.starts_with("compose"))
        .collect()
}

#[test]
fn every_sightline_variable_the_deployment_files_name_is_a_setting() {
    let known: Vec<&str> = environment_variables().collect();
    let mut seen = 0;
    for file in deployment_files() {
        let text = read(&file);
        for name in sightline_names(&text) {
            assert!(
                known.contains(&name),
                "infra/{file} names {name}, which backend/src/config.rs does not read \
                 (known: {})",
                known.join(", ")
            );
            seen += 1;
        }
    }
    // The scan itself works: the files name the listen address and the JWT secret at least.
    assert!(seen >= 10, "only {seen} SIGHTLINE_ names found");
}

#[test]
fn every_value_the_deployment_files_set_is_a_valid_setting() {
    for file in compose_files() {
        compose_settings(&file);
    }
    for file in ["k8s/configmap.yaml", "k8s/secret.example.yaml"] {
        settings_of(file, &yaml_environment(&read(file)));
    }
    // The secrets the pods take from the Secret are the ones the example provides.
    let deployment = read("k8s/deployment.yaml");
    let example = yaml_environment(&read("k8s/secret.example.yaml"));
    for line in yaml_block(&deployment, "env:") {
        if let Some(key) = line.trim().strip_prefix("key: ") {
            assert!(
                example.contains_key(key.trim()),
                "k8s/deployment.yaml reads `{key}` from the Secret; secret.example.yaml lacks it"
            );
        }
    }
}

#[actix_web::test]
async fn the_kubernetes_probes_are_routes_the_server_answers() {
    let deployment = read("k8s/deployment.yaml");
    let path_of = |probe: &str| {
        yaml_value(&yaml_block(&deployment, probe), "path")
            .unwrap_or_else(|| panic!("k8s/deployment.yaml: no {probe} path"))
    };
    let readiness = path_of("readinessProbe:");
    let liveness = path_of("livenessProbe:");
    let startup = path_of("startupProbe:");
    // Readiness must be the check that fails without the database; liveness the one that
    // does not, or a database outage would restart every pod.
    assert_eq!(readiness, "/readyz", "readinessProbe");
    assert_eq!(liveness, "/healthz", "livenessProbe");

    let app = TestApp::spawn_embedded().await;
    for path in [&readiness, &liveness, &startup] {
        app.get(path, None).await.expect(200);
    }
    // The probes use the container port by name; that name must be declared.
    for probe in ["readinessProbe:", "livenessProbe:", "startupProbe:"] {
        let port = yaml_value(&yaml_block(&deployment, probe), "port").unwrap();
        assert!(
            port == "http" && deployment.contains("- name: http\n"),
            "{probe} port `{port}` is not the container's `http` port"
        );
    }
}

/// Compose has no HTTP probe of its own: a server container is checked by running the
/// image's `sightline probe`, which the API tests show failing without the database.
#[test]
fn compose_checks_every_server_with_its_probe_and_waits_for_readiness() {
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("COPY --from=build /usr/local/bin/sightline /usr/local/bin/sightline"),
        "Dockerfile: the binary is not at /usr/local/bin/sightline"
    );
    assert!(
        dockerfile.contains("--timeout=6s")
            && dockerfile.contains(r#"CMD ["/usr/local/bin/sightline", "probe"]"#),
        "Dockerfile: the image's HEALTHCHECK"
    );
    // `/readyz` waits up to 2 s for PostgreSQL and then 2 s for Redis.
    let longest_answer = Duration::from_secs(4);
    for file in compose_files() {
        let text = read(&file);
        // The first health check in each file is the server's: compose.yaml's app service
        // comes first, and compose.cluster.yaml's is in the replicas' shared block.
        let check = yaml_block(&text, "healthcheck:");
        let test = yaml_value(&check, "test").unwrap_or_default();
        assert_eq!(
            test, r#"["CMD", "/usr/local/bin/sightline", "probe"]"#,
            "{file}: the server's health check"
        );
        let timeout = duration(&file, &yaml_value(&check, "timeout").unwrap_or_default());
        assert!(
            timeout > longest_answer,
            "{file}: health check timeout {timeout:?}"
        );
    }
    let cluster = read("compose.cluster.yaml");
    let nginx = yaml_block(&cluster, "nginx:");
    let waits = nginx
        .iter()
        .filter(|line| line.trim() == "condition: service_healthy")
        .count();
    assert_eq!(
        waits, 3,
        "compose.cluster.yaml: nginx waits for each replica's health"
    );
}

#[test]
fn the_app_port_is_the_one_nginx_kubernetes_and_compose_send_to() {
    let port_of = |file: &str, settings: &Settings| -> u16 {
        let listen: SocketAddr = settings.listen;
        assert!(
            listen.ip().is_unspecified(),
            "{file}: SIGHTLINE_LISTEN {listen} is not reachable from outside the container"
        );
        listen.port()
    };
    let dockerfile = read("Dockerfile");
    let dockerfile_listen = dockerfile
        .split_whitespace()
        .find_map(|w| w.strip_prefix("SIGHTLINE_LISTEN="))
        .expect("Dockerfile: no SIGHTLINE_LISTEN");
    let image_port: SocketAddr = dockerfile_listen.parse().unwrap();

    // Single node: the published port's container side is the app's.
    let single = compose_settings("compose.yaml");
    let single_port = port_of("compose.yaml", &single);
    assert_eq!(single_port, image_port.port(), "compose.yaml vs Dockerfile");
    let compose = read("compose.yaml");
    let published = yaml_block(&compose, "ports:");
    assert!(
        published.iter().any(
            |l| scalar(l.trim().trim_start_matches("- ")).ends_with(&format!(":{single_port}"))
        ),
        "compose.yaml publishes no port to {single_port}: {published:?}"
    );

    // Cluster: nginx's upstream servers are the replicas, at their SIGHTLINE_LISTEN port.
    let cluster_file = "compose.cluster.yaml";
    let cluster = read(cluster_file);
    let app_port = port_of(cluster_file, &compose_settings(cluster_file));
    let conf = nginx_conf();
    let upstream = nginx_block(&conf, "upstream sightline");
    let servers: Vec<&str> = upstream
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(';')
        })
        .collect();
    assert!(
        servers.len() >= 2,
        "nginx.conf: upstream servers {servers:?}"
    );
    for server in &servers {
        let (host, port) = server.rsplit_once(':').expect("host:port");
        assert_eq!(
            port.parse::<u16>().unwrap(),
            app_port,
            "nginx.conf upstream {server} vs SIGHTLINE_LISTEN in {cluster_file}"
        );
        assert!(
            cluster.contains(&format!("\n  {host}: *app")),
            "nginx.conf upstream {server} is not an app replica of {cluster_file}"
        );
    }
    let replicas = cluster.matches(": *app\n").count();
    assert_eq!(
        replicas,
        servers.len(),
        "{cluster_file} runs {replicas} replicas, nginx.conf balances {servers:?}"
    );
    let nginx_listen = nginx_directive(&conf, "listen").expect("nginx.conf: no listen");
    let nginx_service = yaml_block(&cluster, "nginx:");
    assert!(
        nginx_service
            .iter()
            .any(|l| scalar(l.trim().trim_start_matches("- ")) == format!("8080:{nginx_listen}")),
        "{cluster_file}: nginx's port {nginx_listen} is not published on the host's 8080"
    );

    // Kubernetes: containerPort and the Service's targetPort.
    let pod_port = port_of("k8s/configmap.yaml", &k8s_settings());
    let deployment = read("k8s/deployment.yaml");
    let container_port = number(
        "k8s/deployment.yaml",
        "containerPort",
        yaml_value(&yaml_block(&deployment, "ports:"), "containerPort"),
    );
    assert_eq!(
        container_port,
        u64::from(pod_port),
        "containerPort vs SIGHTLINE_LISTEN"
    );
    let service = read("k8s/service.yaml");
    let target_port = number(
        "k8s/service.yaml",
        "targetPort",
        yaml_value(&yaml_block(&service, "ports:"), "targetPort"),
    );
    assert_eq!(
        target_port,
        u64::from(pod_port),
        "targetPort vs SIGHTLINE_LISTEN"
    );
}

#[test]
fn grace_periods_outlast_the_graceful_shutdown() {
    // Kubernetes: the preStop pause, then the server's own wait, both within the grace period.
    let deployment = read("k8s/deployment.yaml");
    let grace = number(
        "k8s/deployment.yaml",
        "terminationGracePeriodSeconds",
        yaml_value(
            &deployment.lines().collect::<Vec<_>>(),
            "terminationGracePeriodSeconds",
        ),
    );
    let pre_stop: u64 = yaml_block(&deployment, "preStop:")
        .iter()
        .find_map(|l| l.trim().strip_prefix("command: "))
        .map_or(0, |command| {
            let sleep = command.trim_matches(['[', ']']).replace('"', "");
            let words: Vec<&str> = sleep.split(',').map(str::trim).collect();
            assert_eq!(words.first(), Some(&"sleep"), "preStop: {command}");
            words[1].parse().unwrap()
        });
    let shutdown = k8s_settings().shutdown_timeout.as_secs();
    assert!(
        grace > pre_stop + shutdown,
        "terminationGracePeriodSeconds {grace} must exceed the preStop pause {pre_stop} s plus \
         SIGHTLINE_SHUTDOWN_TIMEOUT_SECONDS {shutdown}"
    );

    // Compose: stop_grace_period of every service running the server.
    for file in compose_files() {
        let text = read(&file);
        let shutdown = compose_settings(&file).shutdown_timeout;
        let periods: Vec<Duration> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("stop_grace_period:"))
            .map(|v| duration(&file, &scalar(v)))
            .collect();
        assert!(!periods.is_empty(), "{file}: no stop_grace_period");
        for period in periods {
            assert!(
                period > shutdown,
                "{file}: stop_grace_period {period:?} must exceed the shutdown timeout {shutdown:?}"
            );
        }
    }
}

#[test]
fn the_load_balancers_wait_for_the_servers_own_answers_and_take_its_bodies() {
    let conf = nginx_conf();
    let server = nginx_block(&conf, "server {");
    let body_limit = size(
        "nginx.conf",
        nginx_directive(server, "client_max_body_size").expect("client_max_body_size"),
    );
    assert_eq!(
        body_limit,
        sightline::ingest::MAX_BODY_BYTES,
        "nginx.conf client_max_body_size vs the ingest body limit"
    );

    // nginx must not give up (504) before the server answers 503 itself.
    let reply_timeout = compose_settings("compose.cluster.yaml").ingest_reply_timeout;
    let ingest = nginx_block(&conf, "location /v1/events");
    let read_timeout = duration(
        "nginx.conf",
        nginx_directive(ingest, "proxy_read_timeout").expect("/v1/events proxy_read_timeout"),
    );
    assert!(
        read_timeout > reply_timeout,
        "nginx.conf /v1/events proxy_read_timeout {read_timeout:?} must exceed \
         SIGHTLINE_INGEST_REPLY_TIMEOUT_SECONDS {reply_timeout:?}"
    );

    let ingress = read("k8s/ingress.yaml");
    let reply_timeout = k8s_settings().ingest_reply_timeout.as_secs();
    let annotation = |document: &str, name: &str| {
        yaml_value(
            &document.lines().collect::<Vec<_>>(),
            &format!("nginx.ingress.kubernetes.io/{name}"),
        )
        .unwrap_or_else(|| panic!("k8s/ingress.yaml: no {name}"))
    };
    for document in ingress.split("\n---\n") {
        assert_eq!(
            size("k8s/ingress.yaml", &annotation(document, "proxy-body-size")),
            sightline::ingest::MAX_BODY_BYTES,
            "k8s/ingress.yaml proxy-body-size"
        );
        let timeout = number(
            "k8s/ingress.yaml",
            "proxy-read-timeout",
            Some(annotation(document, "proxy-read-timeout")),
        );
        assert!(
            timeout > reply_timeout,
            "k8s/ingress.yaml proxy-read-timeout {timeout} must exceed \
             SIGHTLINE_INGEST_REPLY_TIMEOUT_SECONDS {reply_timeout}"
        );
        assert!(
            !annotation(document, "upstream-hash-by").is_empty(),
            "k8s/ingress.yaml: consistent hashing"
        );
    }
}

#[test]
fn servers_trust_the_balancer_in_front_of_them_and_nothing_else() {
    // Cluster: nginx appends the client to X-Forwarded-For, and the replicas trust it, or
    // every client would share one login throttle counter.
    let conf = nginx_conf();
    let server = nginx_block(&conf, "server {");
    assert_eq!(
        nginx_directive(server, "proxy_set_header X-Forwarded-For"),
        Some("$proxy_add_x_forwarded_for"),
        "nginx.conf must append the client's address to X-Forwarded-For"
    );
    let cluster = compose_settings("compose.cluster.yaml");
    assert!(
        !cluster.trusted_proxies.is_empty(),
        "compose.cluster.yaml: the replicas must trust nginx (SIGHTLINE_TRUSTED_PROXIES)"
    );
    // Single node: the published port's clients reach the server through Docker's proxy, from
    // the bridge's private address; trusting it would let any client choose its address.
    assert!(
        compose_settings("compose.yaml").trusted_proxies.is_empty(),
        "compose.yaml has no balancer and must trust nobody"
    );
}

#[test]
fn every_kustomization_lists_exactly_the_manifests_beside_it() {
    let kustomizations: Vec<String> = yaml_files_under("k8s")
        .into_iter()
        .filter(|f| f.ends_with("/kustomization.yaml"))
        .collect();
    assert!(
        !kustomizations.is_empty(),
        "no kustomization.yaml under k8s/"
    );
    for kustomization in kustomizations {
        let dir = Path::new(&kustomization).parent().unwrap().to_owned();
        let text = read(&kustomization);
        let listed: Vec<String> = yaml_block(&text, "resources:")
            .iter()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .map(scalar)
            .collect();
        assert!(!listed.is_empty(), "{kustomization}: no resources");
        for resource in &listed {
            let path = infra().join(&dir).join(resource);
            assert!(
                path.exists(),
                "{kustomization} lists {resource}, which does not exist"
            );
        }
        // A manifest beside it but left out would never be applied; templates
        // (`*.example.yaml`) are left out on purpose.
        for entry in std::fs::read_dir(infra().join(&dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".yaml")
                && name != "kustomization.yaml"
                && !name.ends_with(".example.yaml")
            {
                assert!(
                    listed.contains(&name),
                    "{} is not listed in {kustomization}",
                    dir.join(&name).display()
                );
            }
        }
    }
}

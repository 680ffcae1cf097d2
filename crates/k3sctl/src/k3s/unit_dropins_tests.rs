use super::*;

fn found(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

fn paths(dropins: &[UnitDropin]) -> Vec<&str> {
    dropins.iter().map(|d| d.path.as_str()).collect()
}

#[test]
fn prefix_directories_come_from_truncating_after_each_dash() {
    assert_eq!(
        dropin_dir_names("k3s-agent"),
        ["k3s-agent.service.d", "k3s-.service.d", "service.d"]
    );
    assert_eq!(dropin_dir_names("k3s"), ["k3s.service.d", "service.d"]);
    assert_eq!(
        dropin_dir_names("a-b-c"),
        [
            "a-b-c.service.d",
            "a-b-.service.d",
            "a-.service.d",
            "service.d"
        ]
    );
    let dirs = dropin_dirs("k3s-agent");
    assert_eq!(dirs[0], "/etc/systemd/system.control/k3s-agent.service.d");
    assert!(dirs.contains(&"/usr/lib/systemd/system/k3s-.service.d".to_owned()));
    assert!(dirs.contains(&"/run/systemd/system/service.d".to_owned()));
}

#[test]
fn drop_ins_apply_in_file_name_order_across_directories() {
    let applied = applied(
        "k3s",
        &found(&[
            (
                "/usr/lib/systemd/system/k3s.service.d/30-c.conf",
                "[Service]\nA=3\n",
            ),
            (
                "/etc/systemd/system/k3s.service.d/20-b.conf",
                "[Service]\nA=2\n",
            ),
            (
                "/run/systemd/system/k3s.service.d/10-a.conf",
                "[Service]\nA=1\n",
            ),
            (
                "/lib/systemd/system/service.d/05-all.conf",
                "[Service]\nA=0\n",
            ),
        ]),
    );
    assert_eq!(
        paths(&applied),
        [
            "/lib/systemd/system/service.d/05-all.conf",
            "/run/systemd/system/k3s.service.d/10-a.conf",
            "/etc/systemd/system/k3s.service.d/20-b.conf",
            "/usr/lib/systemd/system/k3s.service.d/30-c.conf",
        ]
    );
}

#[test]
fn a_same_named_file_in_etc_masks_run_which_masks_usr_lib() {
    let applied = applied(
        "k3s",
        &found(&[
            (
                "/usr/lib/systemd/system/k3s.service.d/10-x.conf",
                "[Service]\nA=lib\n",
            ),
            (
                "/run/systemd/system/k3s.service.d/10-x.conf",
                "[Service]\nA=run\n",
            ),
            (
                "/run/systemd/system/k3s.service.d/20-y.conf",
                "[Service]\nB=run\n",
            ),
            (
                "/usr/lib/systemd/system/k3s.service.d/20-y.conf",
                "[Service]\nB=lib\n",
            ),
            (
                "/etc/systemd/system/k3s.service.d/10-x.conf",
                "[Service]\nA=etc\n",
            ),
        ]),
    );
    assert_eq!(
        paths(&applied),
        [
            "/etc/systemd/system/k3s.service.d/10-x.conf",
            "/run/systemd/system/k3s.service.d/20-y.conf",
        ]
    );
    assert!(applied.iter().all(|d| d.masks_another), "{applied:?}");
}

#[test]
fn an_empty_file_or_dev_null_link_masks_and_adds_nothing() {
    let applied = applied(
        "k3s",
        &found(&[
            ("/etc/systemd/system/k3s.service.d/10-x.conf", ""),
            (
                "/usr/lib/systemd/system/k3s.service.d/10-x.conf",
                "[Service]\nExecStart=\n",
            ),
            (
                "/usr/lib/systemd/system/k3s.service.d/20-y.conf",
                "[Service]\nB=1\n",
            ),
        ]),
    );
    assert_eq!(
        paths(&applied),
        ["/usr/lib/systemd/system/k3s.service.d/20-y.conf"]
    );
    assert!(!applied[0].masks_another);
}

#[test]
fn the_more_specific_prefix_directory_wins_a_name_whatever_its_search_path_place() {
    // k3s-agent.service.d/10-x.conf in /usr/lib hides k3s-.service.d/10-x.conf in /etc.
    let applied = applied(
        "k3s-agent",
        &found(&[
            (
                "/etc/systemd/system/k3s-.service.d/10-x.conf",
                "[Service]\nA=prefix\n",
            ),
            (
                "/usr/lib/systemd/system/k3s-agent.service.d/10-x.conf",
                "[Service]\nA=own\n",
            ),
            (
                "/etc/systemd/system/k3s-.service.d/20-y.conf",
                "[Service]\nB=prefix\n",
            ),
            (
                "/etc/systemd/system/service.d/20-y.conf",
                "[Service]\nB=all\n",
            ),
            // Another unit's directory and a non-.conf file are not read.
            (
                "/etc/systemd/system/k3s.service.d/30-z.conf",
                "[Service]\nC=1\n",
            ),
            (
                "/etc/systemd/system/k3s-agent.service.d/40.conf.bak",
                "[Service]\nD=1\n",
            ),
        ]),
    );
    assert_eq!(
        paths(&applied),
        [
            "/usr/lib/systemd/system/k3s-agent.service.d/10-x.conf",
            "/etc/systemd/system/k3s-.service.d/20-y.conf",
        ]
    );
    // k3s.service reads no k3s-.service.d (its name has no dash).
    let server = applied_for_server();
    assert_eq!(
        paths(&server),
        ["/etc/systemd/system/k3s.service.d/30-z.conf"]
    );
}

fn applied_for_server() -> Vec<UnitDropin> {
    applied(
        "k3s",
        &found(&[
            (
                "/etc/systemd/system/k3s-.service.d/10-x.conf",
                "[Service]\nA=prefix\n",
            ),
            (
                "/etc/systemd/system/k3s.service.d/30-z.conf",
                "[Service]\nC=1\n",
            ),
        ]),
    )
}

fn dropin(path: &str, text: &str, masks: bool) -> UnitDropin {
    UnitDropin {
        path: path.to_owned(),
        text: text.to_owned(),
        masks_another: masks,
    }
}

#[test]
fn a_drop_in_replacing_exec_start_is_taken_over_and_its_other_lines_kept() {
    let replacing = dropin(
        "/etc/systemd/system/k3s.service.d/20-exec.conf",
        "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\nExecStart=\n\
         ExecStart=/usr/local/bin/k3s server \\\n  --disable=traefik\nLimitNOFILE=4096\n",
        false,
    );
    let env_only = dropin(
        "/etc/systemd/system/k3s.service.d/10-env.conf",
        "[Service]\nEnvironment=K3S_RESOLV_CONF=/etc/resolv.conf\n",
        false,
    );
    let dropins = vec![env_only.clone(), replacing];
    let taken = takeovers(&dropins);
    assert_eq!(taken.len(), 1, "{taken:?}");
    let t = &taken[0];
    assert_eq!(t.path, "/etc/systemd/system/k3s.service.d/20-exec.conf");
    assert!(
        t.backup
            .starts_with("/etc/systemd/system/k3s.service.d/20-exec.conf.before-k3sctl-"),
        "{}",
        t.backup
    );
    assert!(!t.backup.ends_with(".conf"));
    assert_eq!(
        t.exec_start,
        [
            "ExecStart=".to_owned(),
            "ExecStart=/usr/local/bin/k3s server \\\n  --disable=traefik".to_owned()
        ]
    );
    assert_eq!(
        t.rest.as_deref(),
        Some("[Service]\nEnvironment=HTTP_PROXY=http://p:3128\nLimitNOFILE=4096\n")
    );
    let after = after_takeover(&dropins);
    assert_eq!(
        environment_names(&after),
        ["K3S_RESOLV_CONF", "HTTP_PROXY"],
        "what the drop-ins keep setting after the takeover"
    );
    assert_eq!(after[0], env_only);
    assert!(!after[1].text.contains("ExecStart"), "{after:?}");
    assert_eq!(
        exec_start_source(&dropins).map(|d| d.name()),
        Some("20-exec.conf")
    );
    assert_eq!(exec_start_source(&after), None);
}

#[test]
fn a_drop_in_with_only_exec_start_is_moved_aside_unless_it_masks_another() {
    let text = "# from the playbook\n[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s agent --node-label=a=b\n";
    let alone = dropin(
        "/run/systemd/system/k3s-agent.service.d/50-exec.conf",
        text,
        false,
    );
    let taken = takeovers(std::slice::from_ref(&alone));
    assert_eq!(taken[0].rest, None);
    assert!(after_takeover(&[alone]).is_empty());
    // Moving a masking drop-in away would bring the one it masks into effect: it is rewritten.
    let masking = dropin(
        "/etc/systemd/system/k3s-agent.service.d/50-exec.conf",
        text,
        true,
    );
    let taken = takeovers(std::slice::from_ref(&masking));
    assert_eq!(
        taken[0].rest.as_deref(),
        Some("# from the playbook\n[Service]\n")
    );
    // The backup name depends on the content: another original never overwrites it.
    let other = dropin(
        "/etc/systemd/system/k3s-agent.service.d/50-exec.conf",
        "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s agent\n",
        true,
    );
    assert_ne!(takeovers(&[other])[0].backup, taken[0].backup);
}

#[test]
fn exec_start_outside_the_service_section_or_commented_is_no_takeover() {
    let d = dropin(
        "/etc/systemd/system/k3s.service.d/10.conf",
        "[Unit]\nExecStart=odd\n[Service]\n# ExecStart=/usr/local/bin/k3s server --x\nEnvironment=A=1\n",
        false,
    );
    assert!(takeovers(&[d]).is_empty());
}

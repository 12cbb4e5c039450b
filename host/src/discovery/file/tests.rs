use std::path::{Path, PathBuf};
use std::time::Duration;

use ember_config::FileSdConfig;
use prometheus::core::Collector;

use super::*;
use crate::discovery::test_support::{
    addresses, eventually, metrics, next_update, start, update_where, write_atomically,
};

const NEVER: Duration = Duration::from_secs(3600);

fn config(patterns: &[PathBuf], refresh_interval: Duration) -> FileSdConfig {
    FileSdConfig {
        files: patterns.to_vec(),
        refresh_interval,
    }
}

fn by_source<'g>(groups: &'g [TargetGroup], source: &str) -> &'g TargetGroup {
    groups
        .iter()
        .find(|group| group.source == source)
        .unwrap_or_else(|| panic!("no group {source} in {groups:#?}"))
}

fn source(path: &Path, index: usize) -> String {
    format!("{}:{index}", path.display())
}

#[tokio::test]
async fn initial_read_finds_json_and_yaml_files_matching_the_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("nodes.json");
    let yaml = dir.path().join("apps.yml");
    std::fs::write(
        &json,
        r#"[{"targets": ["n1:9100", "n2:9100"], "labels": {"env": "prod"}},
            {"targets": ["n3:9100"]}]"#,
    )
    .unwrap();
    std::fs::write(&yaml, "- targets: ['app:8080']\n  labels:\n    team: web\n").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a target file").unwrap();

    let patterns = [dir.path().join("*.json"), dir.path().join("*.yml")];
    let metrics = metrics();
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics));
    let groups = next_update(&mut rx, "the initial read").await;

    assert_eq!(groups.len(), 3, "{groups:#?}");
    let first = by_source(&groups, &source(&json, 0));
    assert_eq!(addresses(first), ["n1:9100", "n2:9100"]);
    assert_eq!(first.labels["env"], "prod");
    assert_eq!(first.labels[FILEPATH_LABEL], json.display().to_string());
    let second = by_source(&groups, &source(&json, 1));
    assert_eq!(addresses(second), ["n3:9100"]);
    assert_eq!(second.labels[FILEPATH_LABEL], json.display().to_string());
    let app = by_source(&groups, &source(&yaml, 0));
    assert_eq!(addresses(app), ["app:8080"]);
    assert_eq!(app.labels["team"], "web");
    assert_eq!(app.labels[FILEPATH_LABEL], yaml.display().to_string());

    let modified = std::fs::metadata(&json).unwrap().modified().unwrap();
    let expected = modified.duration_since(UNIX_EPOCH).unwrap().as_secs() as f64;
    let mtime = |path: &Path| {
        metrics
            .file_mtime_seconds
            .with_label_values(&[&path.display().to_string()])
            .get()
    };
    assert_eq!(mtime(&json), expected);
    assert!(mtime(&yaml) > 0.0);
}

#[tokio::test]
async fn no_matching_file_still_sends_an_empty_first_update() {
    let dir = tempfile::tempdir().unwrap();
    let patterns = [dir.path().join("*.json")];
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics()));
    assert!(next_update(&mut rx, "the initial read").await.is_empty());
}

#[tokio::test]
async fn changes_are_noticed_through_file_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, r#"[{"targets": ["old:1"]}]"#).unwrap();
    // With an hour between refreshes, only a notification can explain an update.
    let patterns = [dir.path().join("*.json")];
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics()));
    let initial = next_update(&mut rx, "the initial read").await;
    assert_eq!(addresses(&initial[0]), ["old:1"]);

    write_atomically(&file, r#"[{"targets": ["new:1", "new:2"]}]"#);
    let update = update_where(&mut rx, "the rewritten file", |update| {
        addresses(by_source(update, &source(&file, 0))) != ["old:1"]
    })
    .await;
    assert_eq!(
        addresses(by_source(&update, &source(&file, 0))),
        ["new:1", "new:2"]
    );

    // A new file matching the pattern is found the same way.
    let added = dir.path().join("more.json");
    write_atomically(&added, r#"[{"targets": ["more:1"]}]"#);
    let update = update_where(&mut rx, "the new file", |update| {
        update.iter().any(|group| group.source == source(&added, 0))
    })
    .await;
    assert_eq!(
        addresses(by_source(&update, &source(&added, 0))),
        ["more:1"]
    );
}

#[tokio::test]
async fn periodic_refresh_finds_files_no_watch_could_see() {
    let dir = tempfile::tempdir().unwrap();
    // The directory does not exist yet, so it cannot be watched; it appears
    // by a rename, complete with its file, which only a refresh can find.
    let watched = dir.path().join("sd");
    let patterns = [watched.join("*.json")];
    let mut rx = start(FileDiscoverer::new(
        &config(&patterns, Duration::from_millis(100)),
        &metrics(),
    ));
    assert!(next_update(&mut rx, "the initial read").await.is_empty());

    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("late.json"), r#"[{"targets": ["late:1"]}]"#).unwrap();
    std::fs::rename(&staging, &watched).unwrap();

    let update = next_update(&mut rx, "the periodic refresh").await;
    assert_eq!(
        addresses(by_source(&update, &source(&watched.join("late.json"), 0))),
        ["late:1"]
    );
}

#[tokio::test]
async fn a_deleted_file_sends_empty_groups_for_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gone.yaml");
    std::fs::write(&file, "- targets: [a]\n- targets: [b]\n").unwrap();
    let patterns = [dir.path().join("*.yaml")];
    let metrics = metrics();
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics));
    assert_eq!(next_update(&mut rx, "the initial read").await.len(), 2);
    let mtimes = || metrics.file_mtime_seconds.collect()[0].get_metric().len();
    assert_eq!(mtimes(), 1);

    std::fs::remove_file(&file).unwrap();
    let update = next_update(&mut rx, "the deletion").await;
    assert_eq!(
        update,
        vec![
            TargetGroup::empty(source(&file, 0)),
            TargetGroup::empty(source(&file, 1))
        ]
    );
    assert_eq!(mtimes(), 0, "a deleted file has no modification time");
}

#[tokio::test]
async fn a_file_with_fewer_groups_empties_the_sources_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shrinks.json");
    std::fs::write(
        &file,
        r#"[{"targets": ["a"]}, {"targets": ["b"]}, {"targets": ["c"]}]"#,
    )
    .unwrap();
    let patterns = [file.clone()];
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics()));
    assert_eq!(next_update(&mut rx, "the initial read").await.len(), 3);

    write_atomically(&file, r#"[{"targets": ["z"]}]"#);
    let update = update_where(&mut rx, "the shrunk file", |update| {
        update.len() == 3 && addresses(&update[0]) == ["z"]
    })
    .await;
    assert_eq!(addresses(by_source(&update, &source(&file, 0))), ["z"]);
    assert_eq!(
        by_source(&update, &source(&file, 1)),
        &TargetGroup::empty(source(&file, 1))
    );
    assert_eq!(
        by_source(&update, &source(&file, 2)),
        &TargetGroup::empty(source(&file, 2))
    );
}

#[tokio::test]
async fn a_malformed_file_keeps_its_groups_and_counts_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flaky.json");
    let good = dir.path().join("good.json");
    std::fs::write(&file, r#"[{"targets": ["a:1"]}]"#).unwrap();
    std::fs::write(&good, r#"[{"targets": ["g:1"]}]"#).unwrap();
    let metrics = metrics();
    let patterns = [dir.path().join("*.json")];
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics));
    assert_eq!(next_update(&mut rx, "the initial read").await.len(), 2);
    assert_eq!(metrics.file_read_errors.get(), 0);

    write_atomically(&file, r#"[{"targets": ["a:1"]"#);
    let errors = metrics.file_read_errors.clone();
    eventually("a counted read error", || errors.get() >= 1).await;

    write_atomically(&file, r#"[{"targets": ["fixed:1"]}]"#);
    // Until the repair is read, every update carries the good file's group
    // and nothing new for the broken one: in particular no empty group that
    // would drop its targets. (An update may still carry the old group when a
    // refresh ran before the bad write was renamed into place.)
    let flaky = source(&file, 0);
    let update = update_where(&mut rx, "the repaired file", |update| {
        assert_eq!(addresses(by_source(update, &source(&good, 0))), ["g:1"]);
        match update.iter().find(|group| group.source == flaky) {
            Some(group) if addresses(group) == ["fixed:1"] => true,
            Some(group) => {
                assert_eq!(addresses(group), ["a:1"], "{update:#?}");
                false
            }
            None => false,
        }
    })
    .await;
    assert_eq!(addresses(by_source(&update, &flaky)), ["fixed:1"]);
}

#[test]
fn double_stars_mean_one_star() {
    assert_eq!(collapse_stars("/sd/tg_**.json"), "/sd/tg_*.json");
    assert_eq!(collapse_stars("/sd/a*b*.yml"), "/sd/a*b*.yml");
}

#[test]
fn attribute_changes_and_reads_do_not_trigger_a_refresh() {
    use notify::event::{AccessKind, CreateKind, MetadataKind, ModifyKind};
    let event = |kind| notify::Event::new(kind);
    assert!(!needs_refresh(&event(EventKind::Access(AccessKind::Any))));
    assert!(!needs_refresh(&event(EventKind::Modify(
        ModifyKind::Metadata(MetadataKind::Permissions)
    ))));
    assert!(needs_refresh(&event(EventKind::Create(CreateKind::File))));
    assert!(needs_refresh(&event(EventKind::Modify(ModifyKind::Any))));
    assert!(needs_refresh(&event(EventKind::Remove(
        notify::event::RemoveKind::Any
    ))));
    assert!(needs_refresh(
        &event(EventKind::Access(AccessKind::Any)).set_flag(notify::event::Flag::Rescan)
    ));
}

#[tokio::test]
async fn a_partially_written_file_is_read_again_once_complete() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("valid.yml");
    std::fs::write(&file, "- targets: ['a:1']\n- targets: ['b:1']\n").unwrap();
    let metrics = metrics();
    let patterns = [dir.path().join("*.yml")];
    let mut rx = start(FileDiscoverer::new(&config(&patterns, NEVER), &metrics));
    assert_eq!(next_update(&mut rx, "the initial read").await.len(), 2);

    // A writer that is not done yet: the text is not a valid target list.
    write_atomically(&file, "- targets");
    let errors = metrics.file_read_errors.clone();
    eventually("the partial file rejected", || errors.get() >= 1).await;
    // The writer finishes in place, without a rename.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(br#": ["localhost:9091"]"#)
        .unwrap();
    let update = update_where(&mut rx, "the completed file", |update| {
        let first = by_source(update, &source(&file, 0));
        if addresses(first) == ["a:1"] {
            // Read before the partial write landed: the old content.
            return false;
        }
        true
    })
    .await;
    assert_eq!(
        update,
        vec![
            TargetGroup {
                source: source(&file, 0),
                targets: vec![BTreeMap::from([(
                    crate::discovery::ADDRESS_LABEL.to_owned(),
                    "localhost:9091".to_owned()
                )])],
                labels: BTreeMap::from([(FILEPATH_LABEL.to_owned(), file.display().to_string())]),
            },
            TargetGroup::empty(source(&file, 1)),
        ]
    );
}

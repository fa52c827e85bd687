//! The agent's job for a dispatched run: the files and each test's stdin, and the catalog's
//! commands with the request's arguments and the submitted sources filled in (argv elements,
//! never a shell string).

use coderun_schema::agent::{AgentCommand, AgentFile, AgentJob};
use coderun_schema::catalog::{LanguageSpec, SOURCES_PLACEHOLDER};
use coderun_schema::messages::{Job, JobFile};

/// A compile argv with the catalog's `{sources}` element replaced by every submitted file that
/// has the main file's extension: the main file first, then the others by name. One argv
/// element per file, so no name is split; a name that could read as an option or a response
/// file (`-x`, `@x`; the gateway refuses them) is given as `./name`.
pub fn expand_sources(argv: &[String], language: &LanguageSpec, files: &[JobFile]) -> Vec<String> {
    let extension = std::path::Path::new(&language.source_file).extension();
    let mut sources: Vec<&str> = files
        .iter()
        .map(|file| file.name.as_str())
        .filter(|name| *name != language.source_file)
        .filter(|name| extension.is_some() && std::path::Path::new(name).extension() == extension)
        .collect();
    sources.sort_unstable();
    let main = files
        .iter()
        .any(|file| file.name == language.source_file)
        .then_some(language.source_file.as_str());
    argv.iter()
        .flat_map(|element| {
            if element == SOURCES_PLACEHOLDER {
                main.into_iter()
                    .chain(sources.iter().copied())
                    .map(source_argument)
                    .collect()
            } else {
                vec![element.clone()]
            }
        })
        .collect()
}

/// A file name as a compiler argument: never one that reads as an option or a response file.
fn source_argument(name: &str) -> String {
    if name.starts_with(['-', '@']) {
        format!("./{name}")
    } else {
        name.to_owned()
    }
}

/// The agent's job for a dispatched run: the files and each test's stdin, taken out of `job`,
/// and the catalog's commands with the request's arguments appended as argv.
pub fn agent_job(language: &LanguageSpec, job: &mut Job) -> AgentJob {
    let mut run_argv = language.run.clone();
    run_argv.extend(job.args.iter().cloned());
    let compile = language.compile.as_ref().map(|argv| AgentCommand {
        argv: expand_sources(argv, language, &job.files),
        limits: job.limits.compile,
    });
    let files = std::mem::take(&mut job.files)
        .into_iter()
        .map(|file| AgentFile {
            path: file.name,
            content: file.content,
        })
        .collect();
    let stdins = job
        .tests
        .iter_mut()
        .map(|test| std::mem::take(&mut test.stdin))
        .collect();
    let run = AgentCommand {
        argv: run_argv,
        limits: job.limits.run,
    };
    AgentJob::new(files, compile, run, stdins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::bytes64::Bytes64;
    use coderun_schema::catalog::Catalog;

    fn files(names: &[&str]) -> Vec<JobFile> {
        names
            .iter()
            .map(|name| JobFile {
                name: (*name).to_owned(),
                content: Bytes64(Vec::new()),
            })
            .collect()
    }

    #[test]
    fn sources_are_the_main_file_then_the_others_with_its_extension() {
        let catalog = Catalog::builtin();
        let c = catalog.find("c").expect("c is in the catalog");
        let argv = c.compile.as_ref().expect("c compiles");
        let expanded = expand_sources(
            argv,
            c,
            &files(&["util.c", "lib/square.h", "main.c", "a b;rm -rf x.c", "-o.c"]),
        );
        let at = argv
            .iter()
            .position(|element| element == SOURCES_PLACEHOLDER)
            .expect("the c command names its sources");
        assert_eq!(
            expanded[at..at + 4],
            ["main.c", "./-o.c", "a b;rm -rf x.c", "util.c"],
            "one argv element per file, the main file first, none an option"
        );
        assert_eq!(expanded.len(), argv.len() + 3, "headers are not compiled");
    }
}

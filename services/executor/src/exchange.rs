//! Reading the agent's answer: JSON lines on the container's attached stdout.
//!
//! [`LineBuffer`] splits the byte stream into lines looking at each byte once, however the
//! engine cuts the stream into frames. [`Outputs`] gathers the output the agent streams while
//! commands run (held here, outside the sandbox's memory limit) and enforces the run's output
//! budget a second time; the final [`AgentResult`] gets it back in [`Outputs::fill`].

use coderun_schema::agent::{
    AgentJob, AgentOutput, AgentPaused, AgentResult, AgentSettled, AgentStageDone, OutputStream,
};

/// A byte stream cut into lines, in linear time: each byte is searched for a newline once.
#[derive(Debug, Default)]
pub struct LineBuffer {
    data: Vec<u8>,
    /// Where the next line starts.
    start: usize,
    /// Bytes from `start` up to here hold no newline.
    searched: usize,
    /// Bytes compared with a newline so far (the linear-time promise, tested).
    examined: u64,
}

impl LineBuffer {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop what was already handed out before growing, so the buffer holds one line.
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.searched -= self.start;
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    /// The next complete line, without its newline.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let unsearched = &self.data[self.searched..];
        match unsearched.iter().position(|byte| *byte == b'\n') {
            Some(at) => {
                self.examined += at as u64 + 1;
                let (start, end) = (self.start, self.searched + at);
                self.start = end + 1;
                self.searched = end + 1;
                Some(&self.data[start..end])
            }
            None => {
                self.examined += unsearched.len() as u64;
                self.searched = self.data.len();
                None
            }
        }
    }

    /// Bytes of the unfinished line.
    pub fn pending(&self) -> usize {
        self.data.len() - self.start
    }

    /// Bytes compared with a newline so far.
    pub fn examined(&self) -> u64 {
        self.examined
    }
}

/// One line from the agent.
#[derive(Debug)]
pub enum AgentLine {
    Output(AgentOutput),
    StageDone(Box<AgentStageDone>),
    Paused,
    Answer(Box<AgentResult>),
    /// After a fast-mode answer: whether the container may take the next job.
    Settled(bool),
    /// Not a message of the protocol (the agent never writes one; ignored).
    Other,
}

impl AgentLine {
    pub fn parse(line: &[u8]) -> Self {
        if let Ok(output) = serde_json::from_slice::<AgentOutput>(line) {
            return Self::Output(output);
        }
        if let Ok(done) = serde_json::from_slice::<AgentStageDone>(line) {
            return Self::StageDone(Box::new(done));
        }
        if let Ok(settled) = serde_json::from_slice::<AgentSettled>(line) {
            return Self::Settled(settled.settled_reusable);
        }
        if let Ok(answer) = serde_json::from_slice::<AgentResult>(line) {
            return Self::Answer(Box::new(answer));
        }
        match serde_json::from_slice::<AgentPaused>(line) {
            Ok(_) => Self::Paused,
            Err(_) => Self::Other,
        }
    }
}

/// The output of every stage of one job, as the agent streams it.
#[derive(Debug)]
pub struct Outputs {
    /// stdout and stderr of the compile command.
    compile: [Vec<u8>; 2],
    /// stdout and stderr of each test.
    tests: Vec<[Vec<u8>; 2]>,
    /// Bytes the job may still send.
    budget: u64,
}

/// Why streamed output was refused.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the agent sent output for test {0}, which the job does not have")]
    UnknownTest(u32),
    #[error("the agent sent more output than the run's budget")]
    OverBudget,
}

impl Outputs {
    /// Room for the job's stages and its output budget (`AgentJob::output_budget`).
    pub fn for_job(job: &AgentJob) -> Self {
        Self {
            compile: Default::default(),
            tests: vec![Default::default(); job.stdins.len()],
            budget: job.output_budget.unwrap_or(u64::MAX),
        }
    }

    pub fn add(&mut self, output: AgentOutput) -> Result<(), OutputError> {
        let size = output.data.len() as u64;
        self.budget = self
            .budget
            .checked_sub(size)
            .ok_or(OutputError::OverBudget)?;
        let streams = match output.test {
            None => &mut self.compile,
            Some(test) => self
                .tests
                .get_mut(test as usize)
                .ok_or(OutputError::UnknownTest(test))?,
        };
        let index = match output.stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        streams[index].extend_from_slice(output.data.as_slice());
        Ok(())
    }

    /// Gives a stage that just ended (a progress report) the output streamed for it so far.
    pub fn fill_stage(&self, done: &mut AgentStageDone) {
        let streams = match done.test {
            None => Some(&self.compile),
            Some(test) => self.tests.get(test as usize),
        };
        if let Some([stdout, stderr]) = streams {
            done.stage_done.stdout.0.clone_from(stdout);
            done.stage_done.stderr.0.clone_from(stderr);
        }
    }

    /// Gives each stage of the answer the output streamed for it.
    pub fn fill(self, result: &mut AgentResult) {
        let stages = result
            .compile
            .iter_mut()
            .zip(std::iter::once(self.compile))
            .chain(result.runs.iter_mut().zip(self.tests));
        for (stage, [stdout, stderr]) in stages {
            if stage.stdout.is_empty() {
                stage.stdout.0 = stdout;
            }
            if stage.stderr.is_empty() {
                stage.stderr.0 = stderr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_answer_in_small_frames_is_examined_about_once() {
        let answer = format!("{{\"blob\":\"{}\"}}\n", "x".repeat(4 * 1024 * 1024));
        let mut lines = LineBuffer::default();
        let mut found = Vec::new();
        for frame in answer.as_bytes().chunks(7) {
            lines.push(frame);
            while let Some(line) = lines.next_line() {
                found.push(line.len());
            }
        }
        assert_eq!(found, vec![answer.len() - 1]);
        assert!(
            lines.examined() <= 2 * answer.len() as u64,
            "examined {} bytes of a {}-byte answer",
            lines.examined(),
            answer.len()
        );
        assert_eq!(lines.pending(), 0);
    }

    #[test]
    fn lines_split_anywhere_come_out_whole_and_in_order() {
        let stream = b"one\ntwo\n\nthree\nfour";
        for cut in 0..stream.len() {
            let mut lines = LineBuffer::default();
            let mut found: Vec<Vec<u8>> = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                lines.push(part);
                while let Some(line) = lines.next_line() {
                    found.push(line.to_vec());
                }
            }
            assert_eq!(found, [&b"one"[..], b"two", b"", b"three"], "cut at {cut}");
            assert_eq!(lines.pending(), 4);
        }
    }

    fn output(test: Option<u32>, stream: OutputStream, data: &[u8]) -> AgentOutput {
        AgentOutput {
            v: coderun_schema::agent::AGENT_PROTOCOL_VERSION,
            test,
            stream,
            data: coderun_schema::bytes64::Bytes64(data.to_vec()),
        }
    }

    #[test]
    fn streamed_output_reaches_its_stage_and_the_budget_holds() {
        let job: AgentJob = serde_json::from_str(include_str!(
            "../../../schema/tests/fixtures/agent_job.v1.json"
        ))
        .expect("fixture");
        let mut outputs = Outputs::for_job(&AgentJob {
            output_budget: Some(10),
            ..job
        });
        outputs
            .add(output(None, OutputStream::Stderr, b"warn"))
            .expect("room");
        outputs
            .add(output(Some(1), OutputStream::Stdout, b"3\n"))
            .expect("room");
        assert!(matches!(
            outputs.add(output(Some(2), OutputStream::Stdout, b"x")),
            Err(OutputError::UnknownTest(2))
        ));
        assert!(matches!(
            outputs.add(output(Some(0), OutputStream::Stdout, b"12345")),
            Err(OutputError::OverBudget)
        ));
        let mut result = AgentResult {
            compile: Some(Default::default()),
            runs: vec![Default::default(), Default::default()],
            ..Default::default()
        };
        outputs.fill(&mut result);
        assert_eq!(result.compile.expect("compile").stderr.as_slice(), b"warn");
        assert_eq!(result.runs[1].stdout.as_slice(), b"3\n");
        assert!(result.runs[0].stdout.is_empty());
    }
}

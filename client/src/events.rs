//! Reading a run's Server-Sent Events (`GET /v1/runs/{id}/events`).

use coderun_schema::stream::RunStreamEvent;

use crate::ClientError;

/// One event as it came over the wire.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: String,
    /// The `data:` field, decoded.
    pub data: RunStreamEvent,
}

/// An open event stream, read one event at a time.
pub struct EventReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// Comment lines (`: keep-alive`) seen so far.
    pub comments: usize,
}

impl EventReader {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            comments: 0,
        }
    }

    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(end) = find_blank_line(&self.buffer) {
                let block: Vec<u8> = self.buffer.drain(..end.1).collect();
                if let Some(event) = self.parse(&block[..end.0])? {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }

    /// Every remaining event, until the server ends the stream.
    pub async fn collect(mut self) -> Result<Vec<SseEvent>, ClientError> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await? {
            events.push(event);
        }
        Ok(events)
    }

    fn parse(&mut self, block: &[u8]) -> Result<Option<SseEvent>, ClientError> {
        let text = String::from_utf8_lossy(block);
        let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
        for line in text.lines() {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = value.to_owned(),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let data = serde_json::from_str(&data).map_err(|error| ClientError::UnexpectedBody {
            status: 200,
            body: format!("an event's data is not a run event ({error}): {data}"),
        })?;
        Ok(Some(SseEvent { id, event, data }))
    }
}

/// The end of the first event block: (where its text ends, where the next block starts).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|pair| pair == b"\n\n");
    lf.map(|at| (at, at + 2))
}

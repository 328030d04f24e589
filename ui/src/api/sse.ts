// Server-Sent Events over a fetch() response body (EventSource cannot POST).
export interface SseEvent {
  event: string;
  data: string;
}

// Incremental parser: feed text as it arrives, get complete events back. Handles \r\n, events
// split anywhere, multi-line data and comment lines (": keep-alive").
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      let line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
      } else if (line.startsWith(':')) {
        // Comment.
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') this.event = value;
        else if (field === 'data') this.data.push(value);
      }
    }
    return out;
  }
}

// Reads an SSE response, calling onEvent with parsed JSON data. UTF-8 split across chunks is
// decoded correctly (TextDecoder in streaming mode).
export async function readSse(
  response: Response,
  onEvent: (event: string, data: any) => void,
): Promise<void> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const e of parser.push(decoder.decode(value, { stream: true }))) {
      let data: any = e.data;
      try {
        data = JSON.parse(e.data);
      } catch {
        // Not JSON: hand over the text.
      }
      onEvent(e.event, data);
    }
  }
  for (const e of parser.push(decoder.decode() + '\n\n')) onEvent(e.event, safeJson(e.data));
}

function safeJson(s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

import { describe, expect, it } from 'vitest';
import { SseParser, readSse } from './sse';

describe('SseParser', () => {
  it('parses typed events', () => {
    const p = new SseParser();
    expect(p.push('event: token\ndata: {"text":"Hi"}\n\n')).toEqual([{ event: 'token', data: '{"text":"Hi"}' }]);
  });

  it('handles events split at every byte', () => {
    const stream = 'event: token\ndata: {"text":"a"}\n\nevent: done\ndata: {"x":1}\n\n';
    const p = new SseParser();
    const got = [];
    for (const ch of stream) got.push(...p.push(ch));
    expect(got.map((e) => e.event)).toEqual(['token', 'done']);
  });

  it('ignores comments, accepts CRLF and joins multi-line data', () => {
    const p = new SseParser();
    expect(p.push(': keep-alive\r\n\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n')).toEqual([{ event: 'x', data: 'a\nb' }]);
  });

  it('defaults the event name to message', () => {
    expect(new SseParser().push('data: [DONE]\n\n')).toEqual([{ event: 'message', data: '[DONE]' }]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 split across chunks', async () => {
    const bytes = new TextEncoder().encode('event: token\ndata: {"text":"Grüße 😊"}\n\n');
    const chunks = [bytes.slice(0, 27), bytes.slice(27, 30), bytes.slice(30)];
    const body = new ReadableStream({
      start(c) {
        for (const x of chunks) c.enqueue(x);
        c.close();
      },
    });
    const got: any[] = [];
    await readSse(new Response(body), (event, data) => got.push([event, data]));
    expect(got).toEqual([['token', { text: 'Grüße 😊' }]]);
  });
});

import http from 'node:http';

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
}

interface KeyValue {
  key: string;
  value: Record<string, unknown>;
}

function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, Object.values(a.value)[0]]));
}

/** An OTLP/HTTP (JSON) receiver: keeps every span and the names of the metrics it is sent. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly metrics = new Map<string, Set<string>>(); // metric name → services that sent it
  private server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        const doc = JSON.parse(body) as Record<string, unknown>;
        if (req.url === '/v1/traces') this.takeSpans(doc);
        if (req.url === '/v1/metrics') this.takeMetrics(doc);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });

  private takeSpans(doc: Record<string, unknown>): void {
    for (const rs of (doc.resourceSpans as Array<Record<string, unknown>>) ?? []) {
      const service = String(attrs((rs.resource as { attributes?: KeyValue[] })?.attributes)['service.name']);
      for (const ss of (rs.scopeSpans as Array<{ spans?: Array<Record<string, unknown>> }>) ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            service,
            traceId: String(s.traceId),
            spanId: String(s.spanId),
            parentSpanId: typeof s.parentSpanId === 'string' ? s.parentSpanId : '',
            name: String(s.name),
            kind: Number(s.kind),
            attributes: attrs(s.attributes as KeyValue[]),
            links: ((s.links as Array<{ traceId: string; spanId: string }>) ?? []).map((l) => ({
              traceId: l.traceId,
              spanId: l.spanId,
            })),
          });
        }
      }
    }
  }

  private takeMetrics(doc: Record<string, unknown>): void {
    for (const rm of (doc.resourceMetrics as Array<Record<string, unknown>>) ?? []) {
      const service = String(attrs((rm.resource as { attributes?: KeyValue[] })?.attributes)['service.name']);
      for (const sm of (rm.scopeMetrics as Array<{ metrics?: Array<{ name: string }> }>) ?? []) {
        for (const m of sm.metrics ?? []) {
          const set = this.metrics.get(m.name) ?? new Set();
          set.add(service);
          this.metrics.set(m.name, set);
        }
      }
    }
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'

/**
 * A controllable stand-in for the Kafka REST Proxy v2 produce API (and core's edge-config endpoint),
 * used by the edge tests running in workerd. The real proxy is core's gateway; this one exists so a
 * test can make the proxy fail in the ways a real one does and then recover.
 *
 * Control (JSON bodies):
 * - `POST /__control` `{ mode, times?, rejectEvery?, rejectCode?, delayMs? }`
 *   - `ok`: every record is written.
 *   - `unauthorized`: answers 401 like a proxy whose credentials were rotated, writes nothing.
 *   - `fail500`: answers 500, writes nothing.
 *   - `hang`: never answers (until the client gives up), writes nothing.
 *   - `slowAck`: writes every record, then answers only after `delayMs` (a produce that is stored
 *     but whose acknowledgement comes too late for the client, as from a loaded proxy or broker).
 *   - `reject`: writes every record except each `rejectEvery`-th (index % rejectEvery === 0), which
 *     gets `error_code: rejectCode` (2 retriable, 1 not), answered 422 like Karapace.
 *   `times` makes the mode last that many produce calls, then `ok` again.
 * - `POST /__config` `{ status?, body? }` sets the edge-config answer.
 * - `GET /__received?topic=` → `{ records, calls }`: what was written and how many produce calls came for that topic.
 * - `POST /__reset` clears everything.
 *
 * Like core's gateway and Confluent's proxy with BASIC auth, produce calls need
 * `Authorization: Basic` with `PROXY_USER:PROXY_PASSWORD` (the workerd tests' bindings); anything
 * else answers 401 `{ error_code: 40101 }` and is counted in `unauthorized`.
 */
export const PROXY_USER = 'edge_proxy_test'
export const PROXY_PASSWORD = 'proxy-secret-test'

export interface FakeProxyState {
  mode: 'ok' | 'fail500' | 'hang' | 'reject' | 'unauthorized' | 'slowAck'
  times: number | null
  delayMs: number
  rejectEvery: number
  rejectCode: number
  calls: Record<string, number>
  received: Record<string, { key: unknown; value: unknown }[]>
  config: { status: number; body: unknown }
  configCalls: number
  unauthorized: number
}

function freshState(): FakeProxyState {
  return {
    mode: 'ok', times: null, delayMs: 1000, rejectEvery: 3, rejectCode: 2, calls: {}, received: {},
    config: { status: 404, body: { error: 'no config set' } }, configCalls: 0, unauthorized: 0,
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  return text ? JSON.parse(text) : {}
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

export async function startFakeProxy(port = 0): Promise<{ url: string; server: Server; state: () => FakeProxyState }> {
  let state = freshState()
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      if (req.method === 'POST' && url.pathname === '/__reset') {
        state = freshState()
        return send(res, 200, { ok: true })
      }
      if (req.method === 'POST' && url.pathname === '/__control') {
        const body = (await readJson(req)) as Partial<FakeProxyState>
        state.mode = body.mode ?? 'ok'
        state.times = body.times ?? null
        state.rejectEvery = body.rejectEvery ?? 3
        state.rejectCode = body.rejectCode ?? 2
        state.delayMs = body.delayMs ?? 1000
        return send(res, 200, { ok: true })
      }
      if (req.method === 'POST' && url.pathname === '/__config') {
        const body = (await readJson(req)) as { status?: number; body?: unknown }
        state.config = { status: body.status ?? 200, body: body.body ?? {} }
        return send(res, 200, { ok: true })
      }
      if (req.method === 'GET' && url.pathname === '/__received') {
        const topic = url.searchParams.get('topic') ?? 'ad-events'
        return send(res, 200, { records: state.received[topic] ?? [], calls: state.calls[topic] ?? 0, configCalls: state.configCalls, unauthorized: state.unauthorized })
      }
      if (req.method === 'GET' && url.pathname === '/v1/internal/edge-config') {
        state.configCalls++
        if (req.headers.authorization !== 'Bearer edge_sync_test') return send(res, 401, { error: { code: 'unauthorized' } })
        return send(res, state.config.status, state.config.body)
      }
      const m = /^\/topics\/([^/]+)$/.exec(url.pathname)
      if (req.method === 'POST' && m) {
        const topic = decodeURIComponent(m[1]!)
        const expected = `Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')}`
        if (req.headers.authorization !== expected || state.mode === 'unauthorized') {
          state.unauthorized++
          res.writeHead(401, { 'content-type': 'application/vnd.kafka.v2+json', 'www-authenticate': 'Basic realm="fake"' })
          return res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }))
        }
        // The edge produces in the binary embedded format: base64 key and value bytes, decoded here
        // as Confluent's proxy decodes them (the key as UTF-8 text, the value as UTF-8 JSON).
        if (req.headers['content-type'] !== 'application/vnd.kafka.binary.v2+json') {
          return send(res, 415, { error_code: 415, message: 'wrong content type' })
        }
        const body = (await readJson(req)) as { records?: { key: string; value: string }[] }
        const records = (body.records ?? []).map((r) => ({
          key: Buffer.from(r.key, 'base64').toString('utf8'),
          value: JSON.parse(Buffer.from(r.value, 'base64').toString('utf8')) as unknown,
        }))
        state.calls[topic] = (state.calls[topic] ?? 0) + 1
        const mode = state.mode
        if (state.times !== null && --state.times <= 0) {
          state.mode = 'ok'
          state.times = null
        }
        if (mode === 'fail500') return send(res, 500, { error_code: 50001, message: 'broker unavailable' })
        if (mode === 'hang') {
          const timer = setTimeout(() => res.destroy(), 10_000)
          res.on('close', () => clearTimeout(timer))
          return
        }
        const list = (state.received[topic] ??= [])
        const offsets = records.map((r, i) => {
          if (mode === 'reject' && i % state.rejectEvery === 0) {
            return { partition: 0, offset: null, error_code: state.rejectCode, error: 'rejected by test' }
          }
          list.push(r)
          return { partition: 0, offset: list.length - 1, error_code: null, error: null }
        })
        const answer = { offsets, key_schema_id: null, value_schema_id: null }
        if (mode === 'slowAck') {
          // Stored already; the answer leaves after the client has given up (or is lost with it).
          setTimeout(() => { if (!res.destroyed) send(res, 200, answer) }, state.delayMs)
          return
        }
        return send(res, mode === 'reject' ? 422 : 200, answer)
      }
      send(res, 404, { error_code: 40401, message: 'not found' })
    })().catch((err: unknown) => send(res, 500, { error: String(err) }))
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('fake proxy did not bind')
  return { url: `http://127.0.0.1:${address.port}`, server, state: () => state }
}

// Advertiser dashboard: plain ES module, no build step. Talks only to core's /v1 API with the
// advertiser's key (kept in sessionStorage, sent as Authorization: Bearer).
import uPlot from '/dashboard/vendor/uplot.esm.js'

const RANGES = {
  '1h': { ms: 3_600_000, granularity: 'minute', label: 'last hour, per minute' },
  '24h': { ms: 86_400_000, granularity: 'hour', label: 'last 24 hours, per hour' },
  '7d': { ms: 7 * 86_400_000, granularity: 'hour', label: 'last 7 days, per hour' },
}
const KEY_STORAGE = 'adc.apiKey'

const state = { key: sessionStorage.getItem(KEY_STORAGE) || '', campaigns: [], campaign: null, range: '1h', data: null, chart: null, loadSeq: 0 }
const $ = (id) => document.getElementById(id)
const fmtInt = (n) => Number(n).toLocaleString('en-US')
const fmtPct = (x) => `${(x * 100).toFixed(2)}%`
const fmtMoney = (micros) => (micros === null || micros === undefined ? '–' : `$${(micros / 1e6).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`)

class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${state.key}`, Accept: 'application/json' } })
  const body = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'error', body?.error?.message ?? res.statusText)
  return body
}

function setValue(id, raw, text) {
  const el = $(id)
  el.dataset.value = String(raw)
  el.textContent = text
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else if (k.startsWith('data-')) e.setAttribute(k, v)
    else e[k] = v
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return e
}

function fillTable(id, rows) {
  const tbody = $(id).querySelector('tbody')
  const cols = $(id).querySelectorAll('thead th').length
  tbody.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colSpan: cols }, 'nothing in this range'))]))
}

// ---- sign in ---------------------------------------------------------------------------------

async function signIn(key) {
  state.key = key
  const [me, list] = await Promise.all([api('/v1/me'), api('/v1/campaigns').catch((err) => err)])
  if (me.kind === 'publisher') throw new ApiError(403, 'forbidden', 'This is a publisher key; the dashboard needs an advertiser key.')
  sessionStorage.setItem(KEY_STORAGE, key)
  state.kind = me.kind
  $('who').textContent = `${me.name} (${me.id})`
  $('sign-in').hidden = true
  $('app').hidden = false
  $('sign-out').hidden = false
  if (list instanceof Error) throw list
  const { campaigns } = list
  state.campaigns = campaigns
  // Numbers first: start the first campaign's queries, then draw the (possibly long) list.
  state.campaign = campaigns[0]?.id ?? null
  const first = loadMetrics()
  renderCampaigns()
  await first
  loadBilling().catch(showError)
}

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE)
  location.reload()
}

function renderCampaigns() {
  $('campaigns').replaceChildren(
    ...state.campaigns.map((c) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', 'data-campaign': c.id, class: c.id === state.campaign ? 'active' : '', onclick: () => selectCampaign(c.id).catch(showError) },
          c.name,
          el('span', { class: 'price' }, `${c.id} · ${c.pricing.model.toUpperCase()} ${fmtMoney(c.pricing.priceMicros)}`),
        ),
      ),
    ),
  )
}

async function selectCampaign(id) {
  state.campaign = id
  renderCampaigns()
  await loadMetrics()
}

async function selectRange(range) {
  state.range = range
  await loadMetrics()
}

// ---- realtime metrics --------------------------------------------------------------------------

async function loadMetrics() {
  if (!state.campaign) return
  const seq = ++state.loadSeq
  const r = RANGES[state.range]
  const to = Date.now()
  const from = to - r.ms
  for (const b of document.querySelectorAll('#ranges button')) b.classList.toggle('active', b.dataset.range === state.range)
  const base = `/v1/metrics/realtime?campaignId=${encodeURIComponent(state.campaign)}&from=${from}&to=${to}&granularity=${r.granularity}`
  // Breakdowns are summed over the range here, so one hourly query by geo and device serves both.
  const coarse = base.replace(`granularity=${r.granularity}`, 'granularity=hour')
  const [main, byGeoDevice] = await Promise.all([api(base), api(`${coarse}&dimensions=geo,device`)])
  if (seq !== state.loadSeq) return // a newer selection won
  state.data = main
  const app = $('app')
  app.dataset.from = String(from)
  app.dataset.to = String(to)
  app.dataset.granularity = r.granularity
  app.dataset.campaign = state.campaign
  $('range-label').textContent = `${r.label} · ${new Date(from).toISOString().slice(0, 16).replace('T', ' ')} → ${new Date(to).toISOString().slice(11, 16)} UTC`
  const t = main.totals
  setValue('t-impressions', t.impressions, fmtInt(t.impressions))
  setValue('t-clicks', t.clicks, fmtInt(t.clicks))
  setValue('t-ctr', t.ctr, fmtPct(t.ctr))
  setValue('t-uniques', t.uniques, fmtInt(t.uniques))
  setValue('t-spend', t.spendMicros ?? '', fmtMoney(t.spendMicros))
  setValue('t-viewable', t.viewabilityRate ?? '', t.viewabilityRate === null ? 'not measured' : `${fmtPct(t.viewabilityRate)} of ${fmtInt(t.measuredImpressions)}`)
  setValue('t-ivt', t.ivtImpressions + t.ivtClicks, fmtInt(t.ivtImpressions + t.ivtClicks))
  renderFreshness(main.freshness)
  renderChart(main, from, to)
  fillTable('by-geo', breakdown(byGeoDevice.series, 'geo'))
  fillTable('by-device', breakdown(byGeoDevice.series, 'device'))
  fillTable(
    'ivt',
    main.ivtByReason.map((x) => el('tr', { 'data-reason': x.reason }, el('td', {}, x.reason), el('td', {}, x.eventType), el('td', { class: 'num' }, fmtInt(x.events)))),
  )
  app.dataset.loaded = String(seq)
}

function breakdown(series, dim) {
  const agg = new Map()
  for (const p of series) {
    const k = p[dim] || '(unknown)'
    const a = agg.get(k) ?? { impressions: 0, clicks: 0 }
    a.impressions += p.impressions
    a.clicks += p.clicks
    agg.set(k, a)
  }
  return [...agg.entries()]
    .sort((a, b) => b[1].impressions - a[1].impressions || (a[0] < b[0] ? -1 : 1))
    .map(([k, a]) =>
      el(
        'tr',
        { 'data-key': k, 'data-impressions': String(a.impressions) },
        el('td', {}, k),
        el('td', { class: 'num' }, fmtInt(a.impressions)),
        el('td', { class: 'num' }, fmtInt(a.clicks)),
        el('td', { class: 'num' }, fmtPct(a.impressions ? a.clicks / a.impressions : 0)),
      ),
    )
}

function renderFreshness(f) {
  const b = $('freshness')
  b.hidden = false
  if (f.lagMs === null) {
    b.className = 'badge stale'
    b.textContent = 'no data yet'
  } else {
    const s = Math.round(f.lagMs / 1000)
    const text = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`
    b.className = `badge ${s <= 60 ? 'fresh' : s <= 600 ? 'lagging' : 'stale'}`
    b.textContent = `data ${text} behind`
  }
  b.dataset.lagMs = String(f.lagMs)
}

function renderChart(data, from, to) {
  const step = data.granularity === 'minute' ? 60_000 : 3_600_000
  const buckets = new Map(data.series.map((p) => [p.t, p]))
  const xs = []
  const imps = []
  const clicks = []
  const ctr = []
  for (let t = Math.floor(from / step) * step; t < to; t += step) {
    const p = buckets.get(t)
    xs.push(t / 1000)
    imps.push(p ? p.impressions : 0)
    clicks.push(p ? p.clicks : 0)
    ctr.push(p && p.impressions ? (p.clicks / p.impressions) * 100 : null)
  }
  const host = $('chart')
  const width = Math.max(320, host.clientWidth || 800)
  const opts = {
    width,
    height: 300,
    scales: { x: { time: true }, pct: { auto: true } },
    series: [
      {},
      { label: 'Impressions', stroke: '#2f6fed', width: 2, fill: 'rgba(47,111,237,0.08)' },
      { label: 'Clicks', stroke: '#1f9d55', width: 2 },
      { label: 'CTR %', stroke: '#c98a04', width: 1, dash: [4, 4], scale: 'pct', value: (u, v) => (v == null ? '–' : `${v.toFixed(2)}%`) },
    ],
    axes: [{}, { label: 'events' }, { side: 1, scale: 'pct', label: 'CTR %', grid: { show: false } }],
  }
  state.chart?.destroy()
  state.chart = new uPlot(opts, [xs, imps, clicks, ctr], host)
  host.dataset.points = String(xs.length)
}

// ---- billing days ------------------------------------------------------------------------------

async function loadBilling() {
  const today = new Date().toISOString().slice(0, 10)
  const from = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10)
  const { days } = await api(`/v1/billing/days?from=${from}&to=${today}`)
  const rows = []
  for (const d of [...days].reverse()) {
    // An admin key has no advertiser of its own: it sees versions, not one advertiser's spend.
    const daily = d.final && state.kind === 'advertiser' ? await api(`/v1/billing/daily?day=${d.day}`) : null
    rows.push(
      el(
        'tr',
        { 'data-day': d.day },
        el('td', {}, d.day),
        el('td', {}, el('span', { class: `badge ${d.final ? 'final' : 'provisional'}` }, d.final ? `final v${d.versions.at(-1)?.version}` : 'not final')),
        el('td', {}, d.versions.map((v) => `v${v.version} (${v.modelVersion}, ${new Date(v.createdAt).toISOString().slice(0, 16).replace('T', ' ')})`).join(', ')),
        el('td', { class: 'num', 'data-spend': String(daily?.totals.spendMicros ?? '') }, daily ? fmtMoney(daily.totals.spendMicros) : '–'),
      ),
    )
  }
  fillTable('billing', rows)
}

// ---- CSV export --------------------------------------------------------------------------------

/**
 * One CSV field, as the API's CSV writes it (core/src/billing/csv.ts): quoted per RFC 4180, and a
 * text a spreadsheet would read as a formula (starting with =, +, - or @; `-A1` is a valid id) is
 * prefixed with ' . Numbers are written as they are.
 */
function csvCell(v) {
  const s = String(v ?? '')
  const safe = typeof v === 'string' && /^[=+\-@]/.test(s) ? `'${s}` : s
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

function exportCsv() {
  const d = state.data
  if (!d) return
  const header = ['bucket_start_utc', 'campaign_id', 'impressions', 'clicks', 'ctr', 'uniques', 'spend_micros', 'ivt_impressions', 'ivt_clicks']
  const lines = [header.join(',')]
  for (const p of d.series) {
    lines.push([new Date(p.t).toISOString(), d.campaignId, p.impressions, p.clicks, p.ctr.toFixed(6), p.uniques, p.spendMicros ?? '', p.ivtImpressions, p.ivtClicks].map(csvCell).join(','))
  }
  const blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' })
  const a = el('a', { href: URL.createObjectURL(blob), download: `${d.campaignId}-${state.range}-${new Date(d.to).toISOString().slice(0, 16)}.csv` })
  document.body.append(a)
  a.click()
  setTimeout(() => {
    URL.revokeObjectURL(a.href)
    a.remove()
  }, 1000)
}

// ---- wiring ------------------------------------------------------------------------------------

function showError(err) {
  console.error(err)
  const msg = err instanceof ApiError ? `${err.message} (${err.code})` : String(err)
  if (!$('app').hidden) $('range-label').textContent = `Error: ${msg}`
  else $('sign-in-error').textContent = msg
}

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault()
  $('sign-in-error').textContent = ''
  signIn($('api-key').value.trim()).catch((err) => {
    state.key = ''
    sessionStorage.removeItem(KEY_STORAGE)
    $('sign-in').hidden = false
    $('app').hidden = true
    showError(err)
  })
})
$('sign-out').addEventListener('click', signOut)
for (const b of document.querySelectorAll('#ranges button')) b.addEventListener('click', () => selectRange(b.dataset.range).catch(showError))
$('export-csv').addEventListener('click', exportCsv)
window.addEventListener('resize', () => state.data && state.chart?.setSize({ width: Math.max(320, $('chart').clientWidth), height: 300 }))
setInterval(() => {
  if (!$('app').hidden && document.visibilityState === 'visible') loadMetrics().catch(showError)
}, 30_000)

if (state.key) signIn(state.key).catch(() => sessionStorage.removeItem(KEY_STORAGE))

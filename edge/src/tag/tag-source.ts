/**
 * The browser tag served at `GET /tag.js`. Plain ES2017, no dependencies, under 5 KB unminified.
 *
 * Use:
 *   <script async src="https://edge.example/tag.js" data-key="pkpub_..." data-publisher="pub_..."></script>
 *   <div data-adc-impression-id="imp_1" data-adc-ad-id="ad_1" data-adc-campaign-id="cmp_1"
 *        data-adc-request-id="req_1" data-adc-click-token="v1.demo....">
 *     <a href="https://advertiser.example/">...</a>
 *   </div>
 *
 * - One impression per ad element, sent once: with `viewable: true` as soon as at least 50 % of the
 *   element has been in view for one continuous second (IAB/MRC display viewability, measured with
 *   IntersectionObserver; 30 % for large ads of 242,500 px² or more, per the MRC large-ad rule), or
 *   with `viewable: false` when the page is hidden first; `viewMethod` names the rule (`mrc_50_1s`,
 *   `mrc_30_1s`). A browser without IntersectionObserver cannot measure: its impressions are sent on
 *   page hide without `viewable` (unmeasured, never counted as not viewable).
 * - Events are batched: sent after 500 ms or at 50 events, with navigator.sendBeacon (text/plain,
 *   no preflight), falling back to fetch with keepalive; the queue is flushed on pagehide and when
 *   the page becomes hidden.
 * - Event ids are ULIDs (48-bit time + 80 random bits from crypto.getRandomValues).
 * - `data-key` is the publisher's *public* key (scope `public`): it is in the page for anyone to read,
 *   so the edge takes only impressions from it, and clicks only with their signed click token. Never
 *   put a server key (`pk_...`) in a page.
 * - Clicks go through the edge's redirect: links inside an ad with a click token point to /c/<token>;
 *   the token is minted on the ad server with a *token* signing key (request signing keys cannot).
 * - A page prerendered by the browser (speculation rules) sends nothing until it is shown: tracking
 *   starts at `prerenderingchange`, so a prerender the user never opens is no impression.
 * - `window.adc.track(el, ad)` tracks elements added later; `window.adc.flush()` sends at once.
 */
export const TAG_SOURCE = String.raw`(function () {
  'use strict';
  if (window.adc && window.adc.version) return;
  var script = document.currentScript;
  var attr = function (n) { return script ? script.getAttribute(n) : null; };
  var endpoint = attr('data-endpoint') || (script && script.src ? new URL(script.src).origin : location.origin);
  var key = attr('data-key') || '';
  var defaultPublisher = attr('data-publisher') || '';
  var MAX_BATCH = 50, DELAY_MS = 500, VIEW_RATIO = 0.5, LARGE_RATIO = 0.3, LARGE_AREA = 242500, VIEW_MS = 1000;
  var B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  var queue = [], timer = null, tracked = [], waiting = [];

  function ulid() {
    var t = Date.now(), time = '';
    for (var i = 0; i < 10; i++) { time = B32.charAt(t % 32) + time; t = Math.floor(t / 32); }
    var bytes = new Uint8Array(16); crypto.getRandomValues(bytes);
    var rand = '';
    for (var j = 0; j < 16; j++) rand += B32.charAt(bytes[j] % 32);
    return time + rand;
  }

  function send(events) {
    var body = JSON.stringify({ events: events });
    var url = endpoint + '/v1/beacon?k=' + encodeURIComponent(key);
    var queued = false;
    try {
      if (navigator.sendBeacon) queued = navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
    } catch (e) { queued = false; }
    if (!queued && window.fetch) {
      fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit', mode: 'no-cors', headers: { 'content-type': 'text/plain' } })
        .catch(function () {});
    }
  }

  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) send(queue.splice(0, MAX_BATCH));
  }

  function enqueue(ev) {
    queue.push(ev);
    if (queue.length >= MAX_BATCH) flush();
    else if (!timer) timer = setTimeout(flush, DELAY_MS);
  }

  function impression(ad, viewable) {
    if (ad.sent || document.prerendering) return;
    ad.sent = true;
    if (ad.timer) { clearTimeout(ad.timer); ad.timer = null; }
    if (ad.observer) ad.observer.disconnect();
    var ev = {
      type: 'impression', eventId: ulid(), ts: Date.now(), channel: 'web',
      impressionId: ad.impressionId, adId: ad.adId, campaignId: ad.campaignId,
      publisherId: ad.publisherId || defaultPublisher, requestId: ad.requestId
    };
    if (ad.method) { ev.viewable = viewable; ev.viewMethod = ad.method; }
    enqueue(ev);
  }

  function track(el, ad) {
    if (document.prerendering) { waiting.push([el, ad]); return; }
    if (!el || el.__adcTracked) return;
    el.__adcTracked = true;
    var state = { impressionId: ad.impressionId, adId: ad.adId, campaignId: ad.campaignId, requestId: ad.requestId, publisherId: ad.publisherId, sent: false, timer: null, observer: null, method: '' };
    tracked.push(state);
    if (ad.clickToken) {
      var links = el.tagName === 'A' ? [el] : el.querySelectorAll('a');
      for (var i = 0; i < links.length; i++) links[i].href = endpoint + '/c/' + ad.clickToken;
    }
    if (!('IntersectionObserver' in window)) return;
    var need = el.offsetWidth * el.offsetHeight >= LARGE_AREA ? LARGE_RATIO : VIEW_RATIO;
    state.method = need === LARGE_RATIO ? 'mrc_30_1s' : 'mrc_50_1s';
    state.observer = new IntersectionObserver(function (entries) {
      for (var k = 0; k < entries.length; k++) {
        var inView = entries[k].isIntersecting && entries[k].intersectionRatio >= need;
        if (inView && !state.timer && !state.sent && document.visibilityState === 'visible') {
          state.timer = setTimeout(function () { impression(state, true); }, VIEW_MS);
        } else if (!inView && state.timer) {
          clearTimeout(state.timer); state.timer = null;
        }
      }
    }, { threshold: [0, LARGE_RATIO, VIEW_RATIO, 1] });
    state.observer.observe(el);
  }

  function scan(root) {
    var els = (root || document).querySelectorAll('[data-adc-impression-id]');
    for (var i = 0; i < els.length; i++) {
      var d = els[i].dataset;
      track(els[i], { impressionId: d.adcImpressionId, adId: d.adcAdId, campaignId: d.adcCampaignId, requestId: d.adcRequestId, publisherId: d.adcPublisherId, clickToken: d.adcClickToken });
    }
  }

  function pageHidden() {
    // A second of continuous view cannot complete while hidden: measured ads not yet viewable are reported
    // as not viewable; ads it could not measure, without viewable.
    for (var i = 0; i < tracked.length; i++) impression(tracked[i], false);
    flush();
  }

  addEventListener('pagehide', pageHidden);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      for (var i = 0; i < tracked.length; i++) if (tracked[i].timer) { clearTimeout(tracked[i].timer); tracked[i].timer = null; }
      flush();
    }
  });

  window.adc = { version: 1, track: track, scan: scan, flush: flush, ulid: ulid, _pageHidden: pageHidden };
  function start() {
    while (waiting.length) { var w = waiting.shift(); track(w[0], w[1]); }
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', function () { scan(); });
    else scan();
  }
  if (document.prerendering) document.addEventListener('prerenderingchange', start, { once: true });
  else start();
})();
`

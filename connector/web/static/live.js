/* Live pages. The parts of a page marked data-live follow the server without a reload: the page is
   fetched again (the same address, rendered by the same template) and each marked part whose HTML
   changed is swapped in. Every 1.5 s while the part says something is on its way (data-busy), else
   every data-idle seconds (5 by default; a page whose parts are all settled and large, like an event's
   with its payload, asks less often), not at all while the tab is hidden. A part a person is using (focus inside, a field
   typed into) is left alone until they are done; open <details> stay open. */
(function () {
  'use strict';
  if (!document.querySelector('[data-live]') || !window.fetch || !window.DOMParser) return;
  var BUSY = 1500, IDLE = 5000, timer = null;

  function busy() { return document.querySelector('[data-live][data-busy="1"]') !== null; }

  function inUse(part) {
    var active = document.activeElement;
    if (active && active !== document.body && part.contains(active)) return true;  // keyboard focus kept
    return Array.prototype.some.call(part.querySelectorAll('input, textarea, select'), function (field) {
      if (field.type === 'hidden') return false;
      if (field.type === 'checkbox' || field.type === 'radio') return field.checked !== field.defaultChecked;
      if (field.tagName === 'SELECT') {
        return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return field.value !== field.defaultValue;
    });
  }

  function swap(part, fresh) {
    var open = Array.prototype.map.call(part.querySelectorAll('details'), function (d) { return d.open; });
    part.innerHTML = fresh.innerHTML;
    part.setAttribute('data-busy', fresh.getAttribute('data-busy') || '0');
    part.querySelectorAll('details').forEach(function (d, i) { if (open[i]) d.open = true; });
  }

  function refresh() {
    if (document.hidden) { schedule(); return; }
    fetch(location.href, { credentials: 'same-origin', headers: { 'X-Requested-With': 'live' } })
      .then(function (response) {
        if (response.redirected) return null;  // signed out meanwhile: the next click shows the sign-in page
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var page = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (part) {
          var fresh = page.querySelector('[data-live="' + part.getAttribute('data-live') + '"]');
          if (fresh && fresh.innerHTML !== part.innerHTML && !inUse(part)) swap(part, fresh);
        });
        schedule();
      })
      .catch(function () { timer = setTimeout(refresh, IDLE * 2); });  // the server is away: ask less often
  }

  function idle() {
    var seconds = Array.prototype.map.call(document.querySelectorAll('[data-live]'), function (part) {
      return parseFloat(part.getAttribute('data-idle')) || IDLE / 1000;
    });
    return Math.min.apply(null, seconds) * 1000;
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(refresh, busy() ? BUSY : idle()); }

  document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });
  schedule();
})();

/* Following a job's status JSON: shared by the admin's job page
   (imagegen/admin/progress.js) and the Wagtail job page and chooser
   (imagegen_wagtail/progress.js), loaded before either.

   window.imagegen.followStatus reads the status until the job ends (the state
   lives on the server, so a reload or a reopened tab carries on), runs the
   elapsed clock between reads, and says a logout (login redirect, 401, 403)
   or a server that does not answer on the page, trying again, less often,
   until it can carry on by itself. The page's script draws each status. */
'use strict';
window.imagegen = window.imagegen || {};
{
    const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
    const fill = (text, values) => Object.entries(values).reduce(
        (out, [key, value]) => out.split(`%(${key})s`).join(String(value)), text);

    /* options: url (the status JSON), i18n (took, elapsed, overdue,
       logged_out, offline), elapsedEl, track (the bar), connectionEl (the
       notice), render(job) (called with each status read, before the clock
       and the bar's overdue state are brought up to date). */
    function followStatus({ url, i18n, elapsedEl, track, connectionEl, render }) {
        let failures = 0;
        let last = null; // the last status read, and when (for the running clock)
        let lastAt = 0;

        // The clock keeps running between reads, and while the server is away.
        function tick() {
            if (!last) { return; }
            const [low, high] = last.expected_seconds;
            if (last.is_terminal) {
                elapsedEl.textContent = fill(i18n.took, { elapsed: clock(last.elapsed_seconds) });
                return;
            }
            const elapsed = last.elapsed_seconds + (Date.now() - lastAt) / 1000;
            const overdue = elapsed > high;
            elapsedEl.textContent = fill(overdue ? i18n.overdue : i18n.elapsed, {
                elapsed: clock(elapsed), low: clock(low), high: clock(high),
            });
            // Past the usual time the bar stops pretending: it moves without a figure.
            track.classList.toggle('imagegen-bar--overdue', overdue);
            if (overdue) { track.removeAttribute('aria-valuenow'); }
        }
        window.setInterval(tick, 1000);

        function notice(text) {
            connectionEl.hidden = !text;
            connectionEl.textContent = text || '';
        }

        async function refresh() {
            let response = null;
            try {
                response = await fetch(url, {
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                    cache: 'no-store',
                });
            } catch (error) {
                response = null; // no answer at all: network down, server stopped
            }
            const json = response
                && (response.headers.get('Content-Type') || '').includes('application/json');
            // The admin and Wagtail answer a logged-out reader with their login
            // page (a redirect, followed by fetch), the plain URL with 401; a
            // session that lost its permissions gets 403.
            const loggedOut = response && (
                [401, 403].includes(response.status) || (response.redirected && !json)
                || (response.ok && !json));
            if (response && response.ok && json) {
                const job = await response.json();
                failures = 0;
                notice('');
                last = job;
                lastAt = Date.now();
                render(job);
                tick();
                if (!job.is_terminal) { window.setTimeout(refresh, 1500); }
                return;
            }
            // Keep trying, less often, and say why the page is not moving.
            failures += 1;
            const wait = Math.min(30000, 1500 * 2 ** Math.min(failures, 5));
            notice(loggedOut ? i18n.logged_out : fill(i18n.offline, { seconds: Math.round(wait / 1000) }));
            window.setTimeout(refresh, loggedOut ? Math.min(wait, 5000) : wait);
        }
        refresh();
    }

    Object.assign(window.imagegen, { clock, fill, followStatus });
}

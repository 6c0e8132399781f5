/* A job's live progress in the Wagtail admin (its page and the chooser).

   Reads the Wagtail status JSON (/admin/imagegen/jobs/<id>/status/: imagegen's
   job status, its Wagtail images as `images`) until the job ends, and shows
   each image as soon as it is stored. The admin's own progress script reviews
   imagegen's images in place; Wagtail images are reviewed in Wagtail (and in
   the chooser's confirm step), so this one only follows.

   A wait after a temporary provider error is neutral, with the attempt count;
   past the usual time the clock keeps running with "taking longer than usual";
   a logout (login redirect, 401, 403) or a server that does not answer is said
   on the page, and the script carries on by itself when it can. */
'use strict';
{
    const panel = document.getElementById('imagegen-progress');
    if (panel) {
        const i18n = JSON.parse(document.getElementById('imagegen-i18n').textContent);
        const find = (role) => panel.querySelector(`[data-role=${role}]`);
        const statusEl = document.getElementById('imagegen-status');
        const elapsedEl = find('elapsed');
        const track = find('track');
        const bar = find('bar');
        const waitingEl = find('waiting');
        const connectionEl = find('connection');
        const errorEl = find('error');
        const refusedEl = find('refused');
        const results = document.getElementById('imagegen-results');
        const doneEl = find('done');
        const cancelNote = document.getElementById('imagegen-cancel-note');
        const startedTerminal = panel.dataset.terminal === 'true';
        let failures = 0;
        let last = null;
        let lastAt = 0;

        const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
        const fill = (text, values) => Object.entries(values).reduce(
            (out, [key, value]) => out.split(`%(${key})s`).join(String(value)), text);

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

        function addImage(image) {
            if (results.querySelector(`[data-image-id="${image.id}"]`)) { return; }
            const link = document.createElement('a');
            link.className = 'imagegen-card';
            link.dataset.imageId = String(image.id);
            link.href = image.edit_url;
            const img = document.createElement('img');
            img.src = image.thumbnail_url;
            img.alt = image.title;
            link.append(img);
            results.append(link);
        }

        function render(job) {
            last = job;
            lastAt = Date.now();
            statusEl.textContent = job.status_display;
            statusEl.className = `imagegen-badge imagegen-badge--${job.status}`;
            statusEl.dataset.status = job.status;
            track.className = `imagegen-bar imagegen-bar--${job.status}`;
            track.classList.toggle('imagegen-bar--waiting', Boolean(job.waiting_retry));
            const percent = Math.round(job.progress * 100);
            bar.style.width = `${percent}%`;
            track.setAttribute('aria-valuenow', String(percent));
            tick();
            waitingEl.hidden = !job.waiting_retry;
            if (job.waiting_retry) { waitingEl.textContent = fill(i18n.waiting, job.waiting_retry); }
            errorEl.hidden = job.status !== 'failed' || !job.error_message;
            errorEl.textContent = job.error_message;
            refusedEl.hidden = !job.refused_by_moderation;
            if (cancelNote) {
                cancelNote.textContent = job.cancel_may_charge ? i18n.cancel_charged : i18n.cancel_free;
            }
            job.images.forEach(addImage);
            const conditions = {
                refused: job.refused_by_moderation, 'not-refused': !job.refused_by_moderation,
            };
            document.querySelectorAll('.imagegen-tool[data-statuses]').forEach((tool) => {
                const condition = tool.dataset.condition;
                tool.hidden = !tool.dataset.statuses.split(' ').includes(job.status)
                    || (Boolean(condition) && !conditions[condition]);
            });
            panel.dataset.status = job.status;
            panel.dataset.terminal = String(job.is_terminal);
            if (doneEl && job.is_terminal && !startedTerminal && job.images.length) {
                doneEl.hidden = false;
            }
        }

        function notice(text) {
            connectionEl.hidden = !text;
            connectionEl.textContent = text || '';
        }

        async function refresh() {
            let response = null;
            try {
                response = await fetch(panel.dataset.statusUrl, {
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                    cache: 'no-store',
                });
            } catch (error) {
                response = null; // no answer at all: network down, server stopped
            }
            const json = response
                && (response.headers.get('Content-Type') || '').includes('application/json');
            // Wagtail answers a logged-out reader with its login page (a
            // redirect, followed by fetch); a session without access gets 403.
            const loggedOut = response && ([401, 403].includes(response.status)
                || (response.ok && !json));
            if (response && response.ok && json) {
                const job = await response.json();
                failures = 0;
                notice('');
                render(job);
                if (!job.is_terminal) { window.setTimeout(refresh, 1500); }
                return;
            }
            failures += 1;
            const wait = Math.min(30000, 1500 * 2 ** Math.min(failures, 5));
            notice(loggedOut ? i18n.logged_out : fill(i18n.offline, { seconds: Math.round(wait / 1000) }));
            window.setTimeout(refresh, loggedOut ? Math.min(wait, 5000) : wait);
        }
        refresh();
    }
}

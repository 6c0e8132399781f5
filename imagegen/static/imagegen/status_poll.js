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
    // Reads after the job's end while alt text drafts are pending (3 s apart: 5 minutes).
    const DRAFT_READS = 100;
    const fill = (text, values) => Object.entries(values).reduce(
        (out, [key, value]) => out.split(`%(${key})s`).join(String(value)), text);

    /* A status read `seconds` ago, its fields that follow the clock (left out
       of its ETag: imagegen.views.CLOCK_FIELDS) run on to now, as the server
       would answer them (imagegen.serializers.progress). */
    function runOn(job, seconds) {
        const high = job.expected_seconds[1];
        const elapsed = job.elapsed_seconds + (job.is_terminal ? 0 : seconds);
        const estimated = !job.is_terminal && job.status !== 'finalizing';
        const ran = {
            ...job,
            elapsed_seconds: elapsed,
            progress: estimated
                ? Math.max(job.progress, Math.min(0.95, elapsed / Math.max(high, 1))) : job.progress,
            overdue: !job.is_terminal && elapsed > high,
        };
        if (job.review) {
            ran.review = {
                ...job.review,
                images: job.review.images.map((image) => ({
                    ...image, undo_seconds: Math.max(0, Math.round(image.undo_seconds - seconds)),
                })),
            };
        }
        return ran;
    }

    /* options: url (the status JSON), i18n (took, elapsed, overdue,
       logged_out, offline), elapsedEl, track (the bar), connectionEl (the
       notice), render(job) (called with each status read, before the clock
       and the bar's overdue state are brought up to date). */
    function followStatus({ url, i18n, elapsedEl, track, connectionEl, render }) {
        let failures = 0;
        let draftReads = 0;
        let last = null; // the last status read, and when (for the running clock)
        let lastAt = 0;
        let lastEtag = null;

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
                    // The browser revalidates its copy (If-None-Match): an
                    // unchanged status is a 304 with no body to send or parse.
                    cache: 'no-cache',
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
                // The same ETag as the last read: the job has not moved (the
                // browser answered from its copy after a 304), only the clock has.
                const etag = response.headers.get('ETag');
                const same = Boolean(last && etag && etag === lastEtag);
                const job = same ? runOn(last, (Date.now() - lastAt) / 1000) : await response.json();
                failures = 0;
                notice('');
                if (!same) {
                    last = job;
                    lastAt = Date.now();
                    lastEtag = etag;
                }
                render(job);
                tick();
                // Alt text drafts are made after the job ends: keep reading,
                // less often, until they are in (or for a few minutes at most).
                if (!job.is_terminal) {
                    window.setTimeout(refresh, 1500);
                } else if (job.review && job.review.drafting && draftReads < DRAFT_READS) {
                    draftReads += 1;
                    window.setTimeout(refresh, 3000);
                }
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

    /* An image's alt text draft beside its alt text input, in ``scope`` (a
       review card, a run grid's image): ``[name=alt_text]``, its
       ``[data-role=draft-note]`` and ``[name=decorative]``
       (admin/imagegen/generationjob/alt_text_draft.html). A ready draft goes
       into the input once, while it is empty, as a suggestion marked
       "drafted, check it" (data-draft; the server marks it so when it renders
       the input with it): it is saved only with the input, when the editor
       saves or approves, and an editor who clears it does not get it back.
       ``typed``: ``image`` is what the server saved after a post of this
       input. */
    function showDraft(scope, image, { typed = false } = {}) {
        const field = scope.querySelector('[name=alt_text]');
        const note = scope.querySelector('[data-role=draft-note]');
        const decorative = scope.querySelector('[name=decorative]');
        if (!field || !note) { return; }
        if (typed) {
            field.value = image.alt_text;
            delete field.dataset.draft;
            field.dataset.offered = 'true';
            if (decorative) { decorative.checked = image.decorative; }
        }
        const own = Boolean(image.alt_text || image.decorative);
        const offered = field.dataset.offered || field.dataset.draft !== undefined;
        if (image.alt_text_draft && !own && !field.value && !offered) {
            field.value = image.alt_text_draft;
            field.dataset.draft = image.alt_text_draft;
        }
        const holdsDraft = !own && field.dataset.draft !== undefined && Boolean(field.value);
        field.classList.toggle('is-draft', holdsDraft);
        scope.classList.toggle('is-decorative', Boolean(decorative && decorative.checked));
        let state = '';
        if (!own && !(decorative && decorative.checked)) {
            if (image.alt_text_draft_state === 'pending') {
                state = 'pending';
            } else if (holdsDraft) {
                state = 'ready';
            } else if (image.alt_text_draft_state === 'failed' && !field.value) {
                state = 'failed';
            }
        }
        note.dataset.state = state;
    }

    // Marked decorative: the draft's note gives way (the mark needs no alt text).
    document.addEventListener('change', (event) => {
        const box = event.target;
        if (box.name !== 'decorative' || !box.closest) { return; }
        const scope = box.closest('.imagegen-review, .imagegen-run-image');
        if (!scope) { return; }
        scope.classList.toggle('is-decorative', box.checked);
        const note = scope.querySelector('[data-role=draft-note]');
        if (note && box.checked) { note.dataset.state = ''; }
    });

    Object.assign(window.imagegen, { clock, fill, followStatus, showDraft });
}

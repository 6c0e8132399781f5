/* A job's page: live progress and in-place review.

   Reads the status JSON until the job ends (the state lives on the server, so
   a reload or a reopened tab carries on), adds each image as a review card as
   soon as it is stored, and posts each card's form (title, alt text and the
   button pressed) with fetch, so nothing is reloaded and nothing typed is
   lost. A logout (login redirect, 401, 403) or a server that does not answer
   is said on the page; the script keeps trying and carries on by itself. */
'use strict';
{
    const panel = document.getElementById('imagegen-progress');
    if (panel) {
        const i18n = JSON.parse(document.getElementById('imagegen-i18n').textContent);
        const statusEl = document.getElementById('imagegen-status');
        const elapsedEl = document.getElementById('imagegen-elapsed');
        const bar = document.getElementById('imagegen-bar');
        const track = document.getElementById('imagegen-bar-track');
        const waitingEl = document.getElementById('imagegen-waiting');
        const connectionEl = document.getElementById('imagegen-connection');
        const errorEl = document.getElementById('imagegen-error');
        const refusedEl = document.getElementById('imagegen-refused');
        const cancelNote = document.getElementById('imagegen-cancel-note');
        const results = document.getElementById('imagegen-results');
        const cardTemplate = document.getElementById('imagegen-review-template');
        let failures = 0;
        let last = null; // the last status read, and when (for the running clock)
        let lastAt = 0;

        const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
        const fill = (text, values) => Object.entries(values).reduce(
            (out, [key, value]) => out.split(`%(${key})s`).join(String(value)), text);
        const urlFor = (pattern, id) => pattern.replace('/0/', `/${id}/`);

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

        function setBar(job) {
            track.className = `imagegen-bar imagegen-bar--${job.status}`;
            if (job.waiting_retry) { track.classList.add('imagegen-bar--waiting'); }
            const percent = Math.round(job.progress * 100);
            bar.style.width = `${percent}%`;
            track.setAttribute('aria-valuenow', String(percent));
        }

        function showTools(job) {
            const kept = job.review.images.some((image) => image.review_status !== 'discarded'
                && image.thumbnail_url);
            const conditions = {
                refused: job.refused_by_moderation,
                'not-refused': !job.refused_by_moderation,
                'kept-images': kept,
            };
            document.querySelectorAll('.imagegen-tool[data-statuses]').forEach((tool) => {
                const condition = tool.dataset.condition;
                tool.hidden = !tool.dataset.statuses.split(' ').includes(job.status)
                    || (condition !== undefined && !conditions[condition]);
            });
        }

        function render(job) {
            last = job;
            lastAt = Date.now();
            statusEl.textContent = job.status_display;
            statusEl.className = `imagegen-badge imagegen-badge--${job.status}`;
            statusEl.dataset.status = job.status;
            panel.dataset.status = job.status;
            setBar(job);
            tick();
            // A temporary provider error is a wait, not a failure: neutral,
            // with the attempt count and nothing of the provider's codes.
            waitingEl.hidden = !job.waiting_retry;
            if (job.waiting_retry) { waitingEl.textContent = fill(i18n.waiting, job.waiting_retry); }
            errorEl.hidden = job.status !== 'failed' || !job.error_message;
            errorEl.textContent = job.error_message;
            refusedEl.hidden = !job.refused_by_moderation;
            if (cancelNote) {
                cancelNote.hidden = job.is_terminal;
                cancelNote.textContent = job.cancel_may_charge ? i18n.cancel_charged : i18n.cancel_free;
            }
            job.review.images.forEach((image) => updateCard(image, job.review));
            showTools(job);
            panel.dataset.terminal = String(job.is_terminal);
        }

        // Review cards ---------------------------------------------------------

        function cardOf(id) {
            return results.querySelector(`.imagegen-review[data-image-id="${id}"]`);
        }

        function newCard(image) {
            const card = cardTemplate.content.firstElementChild.cloneNode(true);
            card.dataset.imageId = String(image.id);
            // setAttribute: card.action is the form's buttons named "action".
            card.setAttribute('action', urlFor(panel.dataset.reviewUrl, image.id));
            card.querySelectorAll('a').forEach((a) => { a.href = urlFor(panel.dataset.imageUrl, image.id); });
            card.querySelector('[name=title]').value = image.title;
            card.querySelector('[name=alt_text]').value = image.alt_text;
            card.addEventListener('submit', submitCard);
            results.append(card);
            return card;
        }

        function updateCard(image, review, { typed = false } = {}) {
            const card = cardOf(image.id) || newCard(image);
            card.dataset.reviewStatus = image.review_status;
            const badge = card.querySelector('[data-role=review-status]');
            badge.textContent = image.review_status_display;
            badge.className = `imagegen-badge imagegen-badge--${image.review_status}`;
            card.querySelector('[data-role=name]').textContent = image.name;
            card.querySelector('[data-role=size]').textContent = `${image.width}×${image.height}`;
            const img = card.querySelector('img');
            if (image.thumbnail_url && img.getAttribute('src') !== image.thumbnail_url) {
                img.src = image.thumbnail_url;
            }
            img.alt = image.alt_text || image.name;
            img.hidden = !image.thumbnail_url;
            card.querySelector('.imagegen-card__placeholder').hidden = Boolean(image.thumbnail_url);
            if (typed) {
                // What the server saved, after a post of this card.
                card.querySelector('[name=title]').value = image.title;
                card.querySelector('[name=alt_text]').value = image.alt_text;
            }
            const approve = card.querySelector('[data-role=approve]');
            if (approve) { approve.hidden = image.review_status !== 'new'; }
            const discarded = image.review_status === 'discarded';
            card.querySelector('[data-role=decide]').hidden = discarded;
            card.querySelectorAll('input[type=text], textarea').forEach((field) => {
                field.readOnly = discarded || !review.can_edit;
            });
            startUndo(card, discarded ? image.undo_seconds : 0);
        }

        function startUndo(card, seconds) {
            const box = card.querySelector('[data-role=undo]');
            const text = card.querySelector('[data-role=undo-text]');
            const restore = box.querySelector('button');
            window.clearInterval(Number(card.dataset.undoTimer || 0));
            const discarded = card.dataset.reviewStatus === 'discarded';
            box.hidden = !discarded;
            if (!discarded) { return; }
            const until = Date.now() + seconds * 1000;
            const show = () => {
                const left = Math.ceil((until - Date.now()) / 1000);
                if (left > 0) {
                    text.textContent = fill(i18n.undo, { seconds: left });
                    if (restore) { restore.hidden = false; }
                    return;
                }
                window.clearInterval(Number(card.dataset.undoTimer || 0));
                text.textContent = i18n.deleted;
                if (restore) { restore.hidden = true; }
            };
            show();
            if (seconds > 0) { card.dataset.undoTimer = String(window.setInterval(show, 1000)); }
        }

        async function submitCard(event) {
            event.preventDefault();
            const card = event.currentTarget;
            const message = card.querySelector('[data-role=message]');
            const data = new FormData(card, event.submitter);
            card.classList.add('is-busy');
            try {
                const response = await fetch(card.getAttribute('action'), {
                    method: 'POST',
                    body: data,
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json', 'X-CSRFToken': data.get('csrfmiddlewaretoken') },
                });
                const answer = await response.json();
                // A discard is said by its undo line; every other outcome here.
                const undoSays = response.ok && answer.image && answer.image.review_status === 'discarded';
                message.textContent = undoSays ? '' : answer.message;
                message.classList.toggle('is-error', !response.ok);
                if (answer.image) {
                    updateCard(answer.image, last ? last.review : {
                        can_edit: !card.querySelector('[name=title]').readOnly,
                    }, { typed: response.ok });
                    if (last) {
                        last.review.images = last.review.images.map(
                            (image) => (image.id === answer.image.id ? answer.image : image));
                        showTools(last);
                    }
                }
            } catch (error) {
                message.textContent = i18n.not_sent;
                message.classList.add('is-error');
            } finally {
                card.classList.remove('is-busy');
            }
        }

        results.querySelectorAll('.imagegen-review').forEach((card) => {
            card.addEventListener('submit', submitCard);
            startUndo(card, Number(card.dataset.undoSeconds || 0));
        });

        // Reading the status -----------------------------------------------------

        function notice(text) {
            connectionEl.hidden = !text;
            connectionEl.textContent = text || '';
        }

        async function refresh() {
            let response;
            try {
                response = await fetch(panel.dataset.statusUrl, {
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                    cache: 'no-store',
                });
            } catch (error) {
                response = null; // no answer at all: network down, server stopped
            }
            const json = response && (response.headers.get('Content-Type') || '').includes('application/json');
            // The admin answers a logged-out reader with its login page (a
            // redirect, followed by fetch), the plain URL with 401; a session
            // that lost its permissions gets 403.
            const loggedOut = response && (
                [401, 403].includes(response.status) || (response.redirected && !json)
                || (response.ok && !json));
            if (response && response.ok && json) {
                const job = await response.json();
                failures = 0;
                notice('');
                render(job);
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
}

/* A job's page: live progress and in-place review.

   Follows the status JSON with imagegen/status_poll.js (loaded before: the
   clock, and the notices of a logout or a server that does not answer), adds
   each image as a review card as soon as it is stored, and posts each card's
   form (title, alt text and the button pressed) with fetch, so nothing is
   reloaded and nothing typed is lost. */
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
        const { fill, followStatus, showDraft } = window.imagegen;
        let last = null; // the last status read (its review is kept up to date by the cards)
        const urlFor = (pattern, id) => pattern.replace('/0/', `/${id}/`);

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
            statusEl.textContent = job.status_display;
            statusEl.className = `imagegen-badge imagegen-badge--${job.status}`;
            statusEl.dataset.status = job.status;
            panel.dataset.status = job.status;
            setBar(job);
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
            card.querySelector('[name=decorative]').checked = image.decorative;
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
            }
            showDraft(card, image, { typed });
            const approve = card.querySelector('[data-role=approve]');
            if (approve) { approve.hidden = image.review_status !== 'new'; }
            const discarded = image.review_status === 'discarded';
            card.querySelector('[data-role=decide]').hidden = discarded;
            card.querySelectorAll('input[type=text], textarea').forEach((field) => {
                field.readOnly = discarded || !review.can_edit;
            });
            const decorative = card.querySelector('[name=decorative]');
            if (decorative) { decorative.disabled = discarded || !review.can_edit; }
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

        followStatus({
            url: panel.dataset.statusUrl, i18n, elapsedEl, track, connectionEl, render,
        });
    }
}

/* A run's page: each job's card follows the job's status JSON until the job
   ends (and its images' alt text drafts are in), adds its images as they are
   stored, and sends approve, discard and pick without a reload, approve and
   pick with the image's alt text as typed (a draft waits in the input,
   marked, until then: imagegen/status_poll.js's showDraft). The state lives
   on the server: a reload carries on. */
'use strict';
{
    const grid = document.getElementById('imagegen-run-grid');
    if (grid) {
        const i18n = JSON.parse(document.getElementById('imagegen-run-i18n').textContent);
        const template = document.getElementById('imagegen-run-image-template');
        const notice = document.getElementById('imagegen-run-notice');
        const csrf = document.querySelector('#imagegen-run-csrf [name=csrfmiddlewaretoken]').value;
        const { showDraft } = window.imagegen;
        // Reads after a job's end while its alt text drafts are pending (3 s apart).
        const DRAFT_READS = 100;
        const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

        function say(text) {
            notice.textContent = text;
            notice.hidden = !text;
        }

        function setReview(figure, status, label) {
            figure.dataset.review = status;
            figure.classList.toggle('is-discarded', status === 'discarded');
            const badge = figure.querySelector('.imagegen-run-review');
            badge.className = `imagegen-badge imagegen-badge--${status} imagegen-run-review`;
            badge.textContent = label;
            figure.querySelectorAll('[data-action]').forEach((button) => {
                // Approve only what is new; nothing more once discarded.
                button.disabled = status === 'discarded'
                    || (status === 'approved' && button.dataset.action !== 'discard');
            });
            if (status === 'discarded') {
                const img = figure.querySelector('img');
                if (img) { img.remove(); }
            }
        }

        function addImage(card, job, image) {
            const images = card.querySelector('.imagegen-run-images');
            if (images.querySelector(`[data-image-id="${image.id}"]`)) { return; }
            const figure = template.content.firstElementChild.cloneNode(true);
            figure.dataset.imageId = String(image.id);
            figure.querySelector('a').href = grid.dataset.imageUrl.replace('/0/', `/${image.id}/`);
            const img = figure.querySelector('img');
            img.src = image.preview_url || image.thumbnail_url;
            img.alt = job.prompt.slice(0, 80);
            images.append(figure);
            if (image.review_status !== 'new') {
                setReview(figure, image.review_status, i18n[image.review_status] || image.review_status);
            }
        }

        function render(card, job) {
            const badge = card.querySelector('.imagegen-run-status');
            badge.textContent = job.status_display;
            badge.className = `imagegen-badge imagegen-badge--${job.status} imagegen-run-status`;
            badge.dataset.status = job.status;
            const [low, high] = job.expected_seconds;
            card.querySelector('.imagegen-run-elapsed').textContent = job.is_terminal
                ? i18n.took.replace('%(elapsed)s', clock(job.elapsed_seconds))
                : i18n.elapsed.replace('%(elapsed)s', clock(job.elapsed_seconds))
                    .replace('%(low)s', clock(low)).replace('%(high)s', clock(high));
            const percent = Math.round(job.progress * 100);
            const bar = card.querySelector('.imagegen-run-bar');
            bar.style.width = `${percent}%`;
            bar.parentElement.setAttribute('aria-valuenow', String(percent));
            const error = card.querySelector('.imagegen-run-error');
            error.hidden = !job.error_message || job.status === 'succeeded';
            error.textContent = job.error_message;
            job.images.forEach((image) => addImage(card, job, image));
            (job.review ? job.review.images : []).forEach((image) => {
                const figure = card.querySelector(`[data-image-id="${image.id}"]`);
                if (figure) { showDraft(figure, image); }
            });
            card.dataset.terminal = String(job.is_terminal);
        }

        async function follow(card) {
            let failures = 0;
            let draftReads = 0;
            const refresh = async () => {
                try {
                    const response = await fetch(card.dataset.statusUrl, {
                        credentials: 'same-origin',
                        headers: { Accept: 'application/json' },
                    });
                    if (!response.ok) { throw new Error(String(response.status)); }
                    const job = await response.json();
                    failures = 0;
                    render(card, job);
                    if (!job.is_terminal) {
                        window.setTimeout(refresh, 1500);
                    } else if (job.review && job.review.drafting && draftReads < DRAFT_READS) {
                        draftReads += 1;
                        window.setTimeout(refresh, 3000);
                    }
                } catch (error) {
                    // Keep trying, less often, through network blips and restarts.
                    failures += 1;
                    window.setTimeout(refresh, Math.min(30000, 1500 * 2 ** failures));
                }
            };
            refresh();
        }

        async function act(figure, action) {
            if (action === 'discard' && !window.confirm(i18n.confirm_discard)) { return; }
            const url = grid.dataset.actionUrl
                .replace('/0/', `/${figure.dataset.imageId}/`).replace('/ACTION/', `/${action}/`);
            figure.querySelectorAll('[data-action]').forEach((button) => { button.disabled = true; });
            // Approving (and picking) confirms the alt text as the input has it.
            const body = new FormData();
            if (action !== 'discard') {
                figure.querySelectorAll('.imagegen-run-alt [name]').forEach((input) => {
                    if (input.type !== 'checkbox' || input.checked) { body.set(input.name, input.value); }
                });
            }
            try {
                const response = await fetch(url, {
                    method: 'POST',
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json', 'X-CSRFToken': csrf },
                    body,
                });
                const answer = await response.json().catch(() => ({}));
                if (!response.ok) { throw new Error(answer.error || i18n.failed); }
                say('');
                answer.images.forEach((image) => {
                    const shown = grid.querySelector(`[data-image-id="${image.id}"]`);
                    if (shown) { setReview(shown, image.review_status, image.review_display); }
                    if (shown === figure && action !== 'discard') { showDraft(figure, image, { typed: true }); }
                });
            } catch (error) {
                say(error instanceof TypeError ? i18n.offline : error.message);
                setReview(figure, figure.dataset.review, figure.querySelector('.imagegen-run-review').textContent);
            }
        }

        grid.addEventListener('click', (event) => {
            const button = event.target.closest('[data-action]');
            if (button) { act(button.closest('[data-image-id]'), button.dataset.action); }
        });
        grid.querySelectorAll('[data-image-id]').forEach((figure) => {
            setReview(figure, figure.dataset.review, figure.querySelector('.imagegen-run-review').textContent);
        });
        grid.querySelectorAll('.imagegen-run-job[data-status-url]').forEach((card) => {
            if (card.dataset.terminal !== 'true' || card.dataset.drafting === 'true') { follow(card); }
        });
    }
}

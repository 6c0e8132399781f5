/* A job's live progress in the Wagtail admin (its page and the chooser).

   Reads the Wagtail status JSON (/admin/imagegen/jobs/<id>/status/: imagegen's
   job status, its Wagtail images as `images`) until the job ends, and shows
   each image as soon as it is stored. The admin's own progress script reviews
   imagegen's images in place; Wagtail images are reviewed in Wagtail (and in
   the chooser's confirm step), so this one only follows.

   A wait after a temporary provider error is neutral, with the attempt count.
   imagegen/status_poll.js (loaded before) reads the status, runs the clock
   ("taking longer than usual" past the usual time) and says a logout or a
   server that does not answer. */
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
        const { fill, followStatus } = window.imagegen;

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
            statusEl.textContent = job.status_display;
            statusEl.className = `imagegen-badge imagegen-badge--${job.status}`;
            statusEl.dataset.status = job.status;
            track.className = `imagegen-bar imagegen-bar--${job.status}`;
            track.classList.toggle('imagegen-bar--waiting', Boolean(job.waiting_retry));
            const percent = Math.round(job.progress * 100);
            bar.style.width = `${percent}%`;
            track.setAttribute('aria-valuenow', String(percent));
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

        followStatus({
            url: panel.dataset.statusUrl, i18n, elapsedEl, track, connectionEl, render,
        });
    }
}

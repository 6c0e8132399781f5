/* Live progress on a job's page: reads the status JSON until the job ends.
   The state lives on the server, so a reload or a reopened tab carries on. */
'use strict';
{
    const panel = document.getElementById('imagegen-progress');
    if (panel) {
        const i18n = JSON.parse(document.getElementById('imagegen-i18n').textContent);
        const statusEl = document.getElementById('imagegen-status');
        const elapsedEl = document.getElementById('imagegen-elapsed');
        const bar = document.getElementById('imagegen-bar');
        const errorEl = document.getElementById('imagegen-error');
        const results = document.getElementById('imagegen-results');
        const reload = document.getElementById('imagegen-reload');
        const startedTerminal = panel.dataset.terminal === 'true';
        let failures = 0;

        const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

        function render(job) {
            statusEl.textContent = job.status_display;
            statusEl.className = `imagegen-badge imagegen-badge--${job.status}`;
            statusEl.dataset.status = job.status;
            const [low, high] = job.expected_seconds;
            elapsedEl.textContent = job.is_terminal
                ? i18n.took.replace('%(elapsed)s', clock(job.elapsed_seconds))
                : i18n.elapsed.replace('%(elapsed)s', clock(job.elapsed_seconds))
                    .replace('%(low)s', clock(low)).replace('%(high)s', clock(high));
            const percent = Math.round(job.progress * 100);
            bar.style.width = `${percent}%`;
            bar.parentElement.setAttribute('aria-valuenow', String(percent));
            errorEl.hidden = !job.error_message || job.status === 'succeeded';
            errorEl.textContent = job.error_message;
            const shown = new Set([...results.querySelectorAll('[data-image-id]')].map((a) => a.dataset.imageId));
            job.images.forEach((image) => {
                if (shown.has(String(image.id))) { return; }
                const link = document.createElement('a');
                link.className = 'imagegen-card';
                link.dataset.imageId = String(image.id);
                link.href = panel.dataset.imageUrl.replace('/0/', `/${image.id}/`);
                const img = document.createElement('img');
                img.src = image.thumbnail_url;
                img.alt = job.prompt.slice(0, 80);
                link.append(img);
                results.append(link);
            });
            document.querySelectorAll('.imagegen-tool[data-statuses]').forEach((tool) => {
                tool.hidden = !tool.dataset.statuses.split(' ').includes(job.status);
            });
            panel.dataset.terminal = String(job.is_terminal);
            if (job.is_terminal && !startedTerminal && job.images.length) {
                reload.hidden = false;
            }
        }

        async function refresh() {
            try {
                const response = await fetch(panel.dataset.statusUrl, {
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                });
                if (!response.ok) { throw new Error(String(response.status)); }
                const job = await response.json();
                failures = 0;
                render(job);
                if (!job.is_terminal) { window.setTimeout(refresh, 1500); }
            } catch (error) {
                // Keep trying, less often, through network blips and restarts.
                failures += 1;
                window.setTimeout(refresh, Math.min(30000, 1500 * 2 ** failures));
            }
        }
        refresh();
    }
}

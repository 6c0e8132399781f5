/* The "Generate image" form: the price of all the jobs asked for (one job,
   candidates or a comparison) as options change, prompt length, which
   reference fields apply, how many references are chosen (the reference URL
   widget previews the URLs and counts the usable ones). The server checks
   everything again; this only informs. */
'use strict';
{
    const form = document.getElementById('imagegen-generate-form');
    const pricing = JSON.parse(document.getElementById('imagegen-pricing').textContent);
    const priceEl = document.getElementById('imagegen-price');
    const overBudget = document.getElementById('imagegen-over-budget');

    const value = (name) => {
        const checked = form.querySelector(`[name="${name}"]:checked`);
        if (checked) { return checked.value; }
        const field = form.querySelector(`[name="${name}"]`);
        return field ? field.value : '';
    };

    // The resolution of each job the form asks for: one job, 1-4 candidates,
    // or a comparison (forms without these fields, like Wagtail's, make one).
    function plannedResolutions() {
        const resolution = value('resolution');
        const checked = (name) => [...form.querySelectorAll(`[name="${name}"] option:checked`)]
            .map((option) => option.value);
        switch (value('compare')) {
        case 'resolution': return checked('compare_resolutions');
        case 'aspect_ratio': return checked('compare_aspect_ratios').map(() => resolution);
        case 'prompt':
            return [...form.querySelectorAll('[name="prompt"], [name^="other_prompt_"]')]
                .filter((field) => field.value.trim()).map(() => resolution);
        default: {
            const count = Math.min(4, Math.max(1, Number(value('candidates')) || 1));
            return Array(count).fill(resolution);
        }
        }
    }

    // Sums in ten-thousandths, the prices' precision, so no float rounding shows.
    const units = (price) => Math.round(Number(price) * 10000);
    const amount = (total) => (total % 100 === 0 ? (total / 10000).toFixed(2) : (total / 10000).toFixed(4));

    function updatePrice() {
        const provider = value('provider') || Object.keys(pricing.prices)[0];
        const prices = plannedResolutions().map((res) => (pricing.prices[provider] || {})[res]);
        const detail = document.getElementById('imagegen-price-detail');
        if (!prices.length || prices.some((price) => price === null || price === undefined)) {
            priceEl.textContent = '—';
            if (detail) { detail.textContent = ''; }
            if (overBudget) { overBudget.hidden = true; }
            return;
        }
        const total = prices.reduce((sum, price) => sum + units(price), 0);
        priceEl.textContent = `${amount(total)} ${pricing.currency}`;
        priceEl.dataset.total = amount(total);
        if (detail) {
            // Each job's price, so a comparison shows what each variation costs.
            detail.textContent = prices.length > 1
                ? `(${prices.map((price) => amount(units(price))).join(' + ')})` : '';
        }
        if (overBudget) {
            overBudget.hidden = !pricing.budgets.some((b) => total > units(b.left));
        }
    }

    const prompt = form.querySelector('[name="prompt"]');
    const counter = document.getElementById('imagegen-prompt-count');
    function updateCounter() {
        counter.textContent = `${prompt.value.length} / ${counter.dataset.max}`;
    }

    function updateMode() {
        const i2i = value('mode') === 'image-to-image';
        form.querySelectorAll('.imagegen-i2i-only').forEach((row) => {
            // Keep a row with errors visible: the editor has to see them.
            row.hidden = !i2i && !row.classList.contains('errors');
        });
        const compare = value('compare');
        form.querySelectorAll('[data-compare]').forEach((row) => {
            row.hidden = row.dataset.compare !== compare && !row.classList.contains('errors');
        });
    }

    const urls = form.querySelector('[name="reference_urls"]');
    const refCount = document.getElementById('imagegen-ref-count');
    const refText = refCount ? refCount.textContent.trim() : '';
    function updateRefCount() {
        const chosen = form.querySelectorAll('[name="reference_images"]:checked').length
            // Usable URLs only, as the reference URL widget counts them.
            + Number(urls.dataset.validCount || 0);
        refCount.textContent = `${refText} (${chosen} / ${refCount.dataset.max})`;
        refCount.classList.toggle('imagegen-over-budget', chosen > Number(refCount.dataset.max));
    }

    form.addEventListener('change', () => { updatePrice(); updateMode(); updateRefCount(); });
    prompt.addEventListener('input', updateCounter);
    form.addEventListener('input', (event) => {
        if (event.target.name === 'candidates' || event.target.name.startsWith('other_prompt_')
            || event.target === prompt) { updatePrice(); }
    });
    urls.addEventListener('imagegen:reference-urls', updateRefCount);
    updatePrice(); updateCounter(); updateMode(); updateRefCount();
}

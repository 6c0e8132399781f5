/* The "Generate image" form: price as options change, prompt length, which
   reference fields apply, previews of reference URLs. The server checks
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

    function updatePrice() {
        const provider = value('provider') || Object.keys(pricing.prices)[0];
        const price = (pricing.prices[provider] || {})[value('resolution')];
        if (price === null || price === undefined) {
            priceEl.textContent = '—';
            if (overBudget) { overBudget.hidden = true; }
            return;
        }
        priceEl.textContent = `${price} ${pricing.currency}`;
        if (overBudget) {
            overBudget.hidden = !pricing.budgets.some((b) => Number(price) > Number(b.left));
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
    }

    const urls = form.querySelector('[name="reference_urls"]');
    const previews = document.getElementById('imagegen-url-previews');
    function updatePreviews() {
        previews.replaceChildren();
        urls.value.split('\n').map((s) => s.trim()).filter((s) => /^https?:\/\//i.test(s)).slice(0, 16)
            .forEach((src) => {
                const img = document.createElement('img');
                img.src = src;
                img.alt = '';
                img.loading = 'lazy';
                img.referrerPolicy = 'no-referrer';
                previews.append(img);
            });
    }

    const refCount = document.getElementById('imagegen-ref-count');
    const refText = refCount ? refCount.textContent.trim() : '';
    function updateRefCount() {
        const chosen = form.querySelectorAll('[name="reference_images"]:checked').length
            + urls.value.split('\n').filter((s) => s.trim()).length;
        refCount.textContent = `${refText} (${chosen} / ${refCount.dataset.max})`;
        refCount.classList.toggle('imagegen-over-budget', chosen > Number(refCount.dataset.max));
    }

    form.addEventListener('change', () => { updatePrice(); updateMode(); updateRefCount(); });
    prompt.addEventListener('input', updateCounter);
    urls.addEventListener('input', () => { updatePreviews(); updateRefCount(); });
    updatePrice(); updateCounter(); updateMode(); updatePreviews(); updateRefCount();
}

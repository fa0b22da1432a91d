// The live figures of a published journey, as the server sends them every few seconds (the
// `liveCounts` event), turned into what each step and the page's head show. Pure, so Node's
// test runner can import it; counts.js puts them on the canvas.

// A number as the cards write it: 1,204.
export const count = (n) => Number(n || 0).toLocaleString("en");

// A step no one reached shows zeros, not nothing.
export const ZERO = { entered: 0, waiting: 0, completed: 0, failed: 0, deliveries: { delivered: 0, suppressed: 0, failed: 0 } };

// A step's figures, with its arrivals as a share (%) of the arrivals at the steps leading to
// it (`sourceIds`, the step itself left out); null when those had none, or there are none.
// `counts`: step id -> {entered, waiting, completed, failed, deliveries, empty}.
export function stepFigures(counts, id, sourceIds) {
  const mine = counts[id] || ZERO;
  const sources = new Set(sourceIds.filter((source) => source !== id));
  let share = null;
  if (sources.size) {
    const arrived = [...sources].reduce((sum, source) => sum + ((counts[source] || ZERO).entered || 0), 0);
    // Rounded, except that a step some did not reach never reads 100%.
    const exact = arrived ? (100 * mine.entered) / arrived : null;
    share = exact === null ? null : mine.entered < arrived ? Math.min(99, Math.round(exact)) : Math.round(exact);
  }
  return { ...mine, share };
}

// The journey's figures in the line under its title.
export function journeyFigures(figures) {
  return `${figures.entered} entered, ${figures.active} in it now, ` +
    `${figures.completed} completed, ${figures.converted} converted.`;
}

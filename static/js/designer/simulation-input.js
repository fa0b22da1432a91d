// What the marketer types into the simulation (the events, one per line, and the sample
// customer's traits) read into the request the server takes, and the server's refusal read
// back into words. Pure, so Node's test runner can import it; simulate.js and traits.js use it.

// When an event comes, after the one before: "now", "30 minutes", "2 hours", "3 days",
// "1 week" (or an ISO 8601 duration such as PT2H, as the API takes).
const UNITS = { minute: "M", hour: "H", day: "D", week: "W" };
const WHEN = /^(now|P\S+|(\d+)\s*(minutes?|mins?|m|hours?|h|days?|d|weeks?|w))\s+/i;

// "2 hours" -> "PT2H", "3 days" -> "P3D", "now" -> "PT0S"; an ISO duration as it is, in
// capitals.
export function readAfter(words) {
  if (words.toLowerCase() === "now") return "PT0S";
  if (/^P/i.test(words)) return words.toUpperCase();
  const [, amount, unit] = words.match(/^(\d+)\s*([a-z]+)$/i);
  const key = Object.keys(UNITS).find((name) => name.startsWith(unit.toLowerCase()[0]));
  const letter = UNITS[key];
  return letter === "D" || letter === "W" ? `P${amount}${letter}` : `PT${amount}${letter}`;
}

// The events typed one per line ("2 hours order_completed {"total": 40}") as the API's
// [{after, type, properties}]. Blank lines are skipped; a line that cannot be read throws an
// Error that names it by its number.
export function readEvents(text) {
  const events = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    const when = line.trim().match(WHEN);
    const rest = when ? line.trim().slice(when[0].length) : "";
    const match = rest.match(/^(\S+)\s*(.*)$/);
    if (!when || !match) {
      throw new Error(`Line ${index + 1}: write when it comes, then the event, e.g. "now cart_abandoned" or "2 hours order_completed {\"total\": 40}".`);
    }
    let properties = {};
    if (match[2]) {
      try { properties = JSON.parse(match[2]); } catch (error) {
        throw new Error(`Line ${index + 1}: the event's details after its name must be JSON, e.g. {"cart_value": 120} (${error.message}).`);
      }
    }
    events.push({ after: readAfter(when[1]), type: match[1], properties });
  });
  return events;
}

// A trait's value as typed in the table: numbers and true/false taken as such, a JSON object
// or list when it reads as one, else the text.
export function typedValue(raw) {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === "true" || raw === "false") return raw === "true";
  if (/^[[{]/.test(raw)) { try { return JSON.parse(raw); } catch (e) { /* text after all */ } }
  return raw;
}

// The traits of the table's rows, each [name, value] as typed. An empty row is skipped; a
// value without a name throws an Error that names the row by its number.
export function traitsFromRows(rows) {
  const traits = {};
  rows.forEach(([typedName, typedRaw], index) => {
    const name = typedName.trim();
    const raw = typedRaw.trim();
    if (!name && !raw) return;
    if (!name) throw new Error(`Trait ${index + 1}: give it a name, e.g. tier.`);
    traits[name] = typedValue(raw);
  });
  return traits;
}

// The traits typed as JSON: an object, or nothing at all ({}); anything else throws an Error
// that says how to write them.
export function parseTraits(typed) {
  const text = typed.trim();
  if (!text) return {};
  let traits;
  try { traits = JSON.parse(text); } catch (e) {
    throw new Error('The traits cannot be read: write them as {"first_name": "Ada", "tier": "vip"}, names and text in double quotes.');
  }
  if (!traits || typeof traits !== "object" || Array.isArray(traits)) {
    throw new Error('Write the traits as names with their values, e.g. {"first_name": "Ada", "tier": "vip"}.');
  }
  return traits;
}

// The server's refusal of a simulation ({error, field}) in words. The API names the input at
// fault by its path (events[2].after): here, by its line.
export function simulationError(answer) {
  const line = /^events\[(\d+)\]/.exec(answer.field || "");
  return line ? `Event line ${Number(line[1]) + 1}: ${answer.error}` : answer.error;
}

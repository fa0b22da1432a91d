// Charts of a journey's analytics page, drawn with Chart.js from the figures the page embeds.
// Every chart has a table or a CSV beside it with the same figures.
(function () {
  "use strict";

  function draw() {
    const source = document.getElementById("analytics-data");
    if (!source || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    const styles = getComputedStyle(document.documentElement);
    const text = styles.getPropertyValue("--pico-color").trim() || "#333";
    Chart.defaults.color = text;
    Chart.defaults.font.family = styles.getPropertyValue("--pico-font-family").trim() || "system-ui";
    Chart.defaults.animation = false;
    const colors = { entered: "#3d6fd8", converted: "#1f9d55", delivered: "#b26a00", here: "#9aa7c0" };

    const trend = document.getElementById("trend-chart");
    if (trend) {
      new Chart(trend, {
        type: "line",
        data: {
          labels: data.trend.labels,
          datasets: [
            { label: "Entered", data: data.trend.entered, borderColor: colors.entered, backgroundColor: colors.entered, tension: 0.2 },
            { label: "Converted", data: data.trend.converted, borderColor: colors.converted, backgroundColor: colors.converted, tension: 0.2 },
            { label: "Delivered", data: data.trend.delivered, borderColor: colors.delivered, backgroundColor: colors.delivered, tension: 0.2 },
          ],
        },
        options: { maintainAspectRatio: false, interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    }
    const funnel = document.getElementById("funnel-chart");
    if (funnel) {
      new Chart(funnel, {
        type: "bar",
        data: {
          labels: data.funnel.labels,
          datasets: [
            { label: "Arrived", data: data.funnel.arrived, backgroundColor: colors.entered },
            { label: "Here now", data: data.funnel.here, backgroundColor: colors.here },
          ],
        },
        options: { indexAxis: "y", maintainAspectRatio: false, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    }
    const goal = document.getElementById("goal-chart");
    if (goal) {
      new Chart(goal, {
        type: "bar",
        data: { labels: data.time_to_goal.labels, datasets: [{ label: "Conversions", data: data.time_to_goal.conversions, backgroundColor: colors.converted }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();

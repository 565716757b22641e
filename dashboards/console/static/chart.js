// Draws the signal chart from the JSON the page embeds: one line per series on a time
// axis, the alerts' firing intervals shaded, hover values in the legend (uPlot).
(function () {
  const holder = document.getElementById("chart");
  if (!holder) return;
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const palette = ["#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#4e342e"];
  const shade = {
    hooks: {
      drawClear: [function (u) {
        const ctx = u.ctx;
        ctx.save();
        ctx.fillStyle = "rgba(198, 40, 40, 0.12)";
        for (const [a, b] of data.firing) {
          const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
          ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
        }
        ctx.restore();
      }],
    },
  };
  const opts = {
    width: holder.clientWidth,
    height: 320,
    plugins: [shade],
    scales: { x: { time: true } },
    axes: [{}, { label: data.unit, size: 60 }],
    series: [{}].concat(data.labels.map(function (label, i) {
      return { label: label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
    })),
  };
  const plot = new uPlot(opts, data.columns, holder);
  holder.dataset.points = String(data.columns[0].length);
  window.addEventListener("resize", function () {
    plot.setSize({ width: holder.clientWidth, height: 320 });
  });
})();

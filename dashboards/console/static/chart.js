// Draws the page's charts from the JSON they embed (#chart from #chart-data; and every
// <div class="chart" data-chart="ID"> from the script #ID): one line per series, its
// detector's band (dashed edges, filled between), shaded intervals (when an alert was
// firing), bars under the plot (the alerts a tuning would raise), marked instants (when
// the judge decided, an incident's phases), hover values in the legend. uPlot, served
// from this package.
(function () {
  const palette = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457"];
  const holders = Array.from(document.querySelectorAll("div.chart[data-chart]"));
  const single = document.getElementById("chart");
  if (single && !single.dataset.chart) { single.dataset.chart = "chart-data"; holders.unshift(single); }
  holders.forEach(function (holder) {
    draw(holder, JSON.parse(document.getElementById(holder.dataset.chart).textContent));
  });

  function draw(holder, data) {
    const band = data.band || { labels: [], columns: [], pairs: [] };
    const decorate = {
      hooks: {
        drawClear: [function (u) {
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = "rgba(198, 40, 40, 0.12)";
          for (const [a, b] of data.shade || []) {
            const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
            ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
          }
          ctx.restore();
        }],
        draw: [function (u) {
          const ctx = u.ctx;
          ctx.save();
          // would-be alerts: orange bars along the bottom; a proposal's, violet above them
          const bars = [[data.would_be || [], "rgba(239, 108, 0, 0.85)", 6], [data.proposed || [], "rgba(106, 27, 154, 0.85)", 14]];
          for (const [spans, colour, lift] of bars) {
            ctx.fillStyle = colour;
            for (const [a, b] of spans) {
              const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
              ctx.fillRect(x0, u.bbox.top + u.bbox.height - lift * devicePixelRatio, Math.max(x1 - x0, 3 * devicePixelRatio), 5 * devicePixelRatio);
            }
          }
          ctx.strokeStyle = "#1d232a";
          ctx.fillStyle = "#1d232a";
          ctx.setLineDash([5, 4]);
          ctx.font = "12px system-ui, sans-serif";
          (data.marks || []).forEach(function ([x, label], i) {
            const px = u.valToPos(x, "x", true);
            ctx.beginPath();
            ctx.moveTo(px, u.bbox.top);
            ctx.lineTo(px, u.bbox.top + u.bbox.height);
            ctx.stroke();
            // one label a line lower than the one before: close instants stay readable
            ctx.fillText(label, px + 4, u.bbox.top + 14 * (1 + i));
          });
          ctx.restore();
        }],
      },
    };
    const opts = {
      width: holder.clientWidth,
      height: 320,
      plugins: [decorate],
      scales: { x: { time: data.time !== false } },
      // the axis in UTC, as every time the console prints
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      axes: [{ label: data.x_label || "" }, { label: data.unit || "", size: 60 }],
      series: [{ label: data.time === false ? (data.x_label || "x") : "Time" }].concat(
        data.labels.map(function (label, i) {
          return { label: label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
        }),
        band.labels.map(function (label) {
          return { label: label, width: 1, dash: [6, 4], spanGaps: false, points: { show: false } };
        })
      ),
    };
    // each band's edges take its series' colour; the space between them is filled
    const first = data.labels.length + 1;  // uPlot's index of the first band edge
    const bands = [];
    for (const [upper, lower, of] of band.pairs) {
      const colour = palette[of % palette.length];
      for (const edge of [upper, lower]) if (edge != null) opts.series[first + edge].stroke = colour;
      if (upper != null && lower != null) {
        bands.push({ series: [first + upper, first + lower], fill: colour + "22" });
      }
    }
    if (bands.length) opts.bands = bands;
    const plot = new uPlot(opts, data.columns.concat(band.columns), holder);
    holder.dataset.points = String(data.columns[0].length);
    holder.dataset.bands = String(band.columns.length);
    holder.dataset.wouldBe = String((data.would_be || []).length);
    window.addEventListener("resize", function () {
      plot.setSize({ width: holder.clientWidth, height: 320 });
    });
  }
})();

// The sales-per-day chart of the reports page (Chart.js, vendored in static/vendor/).
// The numbers come from the JSON the server embedded in the page; the same numbers are in
// the table under "Ver dados em tabela" for screen readers and for anyone without canvas.
"use strict";
(() => {
  const canvas = document.getElementById("sales-chart");
  const source = document.getElementById("sales-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const sales = JSON.parse(source.textContent);
  const brl = new Intl.NumberFormat("pt-BR", { style: "currency", currency: "BRL" });
  const compact = new Intl.NumberFormat("pt-BR", {
    style: "currency",
    currency: "BRL",
    notation: "compact",
    maximumFractionDigits: 1,
  });
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  canvas.chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: sales.days.map((d) => d.date.slice(8, 10)),
      datasets: [
        {
          label: "Vendas (R$)",
          data: sales.days.map((d) => Number(d.total)),
          backgroundColor: "rgba(31, 95, 191, 0.78)",
          hoverBackgroundColor: "#174a96",
          borderRadius: 3,
          maxBarThickness: 28,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: reduceMotion ? false : { duration: 300 },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => {
              const d = sales.days[items[0].dataIndex];
              const [y, m, day] = d.date.split("-");
              return `${day}/${m}/${y}`;
            },
            label: (item) => {
              const d = sales.days[item.dataIndex];
              return `${brl.format(Number(d.total))} · ${d.orders} pedido${d.orders === 1 ? "" : "s"}`;
            },
          },
        },
      },
      scales: {
        x: { grid: { display: false }, title: { display: true, text: "Dia do mês" } },
        y: {
          beginAtZero: true,
          ticks: { callback: (value) => compact.format(value) },
          grid: { color: "#e9edf2" },
        },
      },
    },
  });
})();

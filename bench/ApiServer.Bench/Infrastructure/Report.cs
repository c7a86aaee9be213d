using System.Globalization;
using System.Text;

namespace ApiServer.Bench.Infrastructure;

/// <summary>What the suite publishes: one summary row per target, then a section of details per scenario.</summary>
public sealed class Report
{
    private readonly List<(string Measurement, string Result, string Target, bool? Met)> _rows = [];
    private readonly List<(string Title, string Body)> _sections = [];

    public void Row(string measurement, string result, string target, bool? met) => _rows.Add((measurement, result, target, met));

    public void Section(string title, string body) => _sections.Add((title, body.TrimEnd()));

    public IEnumerable<(string Measurement, string Result, string Target, bool? Met)> Rows => _rows;

    public string SummaryTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| Measurement | Result (median of reps) | Target | Met |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var (measurement, result, target, met) in _rows)
            sb.AppendLine($"| {measurement} | {result} | {target} | {(met is null ? "—" : met.Value ? "yes" : "**no**")} |");
        return sb.ToString();
    }

    public string Sections()
    {
        var sb = new StringBuilder();
        foreach (var (title, body) in _sections)
        {
            sb.AppendLine($"### {title}");
            sb.AppendLine();
            sb.AppendLine(body);
            sb.AppendLine();
        }
        return sb.ToString();
    }

    public static string Ms(double value) => value.ToString("0.000", CultureInfo.InvariantCulture) + " ms";

    public static string N(double value, string format = "0.00") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A markdown table of named figures: median, min, max across repetitions.</summary>
    public static string FigureTable(IEnumerable<(string Name, Figure Figure, string Unit)> figures, string number = "0.000")
    {
        var sb = new StringBuilder();
        sb.AppendLine("| Figure | Median | Min | Max | Reps |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (name, figure, unit) in figures)
            sb.AppendLine($"| {name} | {figure.Median.ToString(number, CultureInfo.InvariantCulture)}{unit} | {figure.Min.ToString(number, CultureInfo.InvariantCulture)}{unit} | {figure.Max.ToString(number, CultureInfo.InvariantCulture)}{unit} | {figure.Reps.Count} |");
        return sb.ToString();
    }

    /// <summary>
    /// Named figures measured on each of <paramref name="columns"/> (the backends), side by side: the median with min–max per
    /// column, one row per figure.
    /// </summary>
    public static string CompareTable(IReadOnlyList<string> columns, IEnumerable<(string Name, List<Figure> Figures, string Unit)> figures, string number = "0.000")
    {
        string Cell(Figure f, string unit) => f.Reps.Count == 0
            ? "—"
            : $"{f.Median.ToString(number, CultureInfo.InvariantCulture)}{unit} ({f.Min.ToString(number, CultureInfo.InvariantCulture)}–{f.Max.ToString(number, CultureInfo.InvariantCulture)})";
        var sb = new StringBuilder();
        sb.AppendLine($"| Figure (median, min–max) | {string.Join(" | ", columns)} | Reps |");
        sb.AppendLine($"|---|{string.Concat(columns.Select(_ => "---:|"))}---:|");
        foreach (var (name, row, unit) in figures)
            sb.AppendLine($"| {name} | {string.Join(" | ", row.Select(f => Cell(f, unit)))} | {row.Max(f => f.Reps.Count)} |");
        return sb.ToString();
    }
}

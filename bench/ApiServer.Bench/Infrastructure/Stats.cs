namespace ApiServer.Bench.Infrastructure;

/// <summary>Percentiles of one repetition's samples, and the median/min/max of a figure across repetitions.</summary>
public static class Stats
{
    /// <summary>Nearest-rank percentile (p in 0..100) of unsorted samples.</summary>
    public static double Percentile(IReadOnlyList<double> samples, double p)
    {
        if (samples.Count == 0)
            return double.NaN;
        var sorted = samples.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static double Median(IReadOnlyList<double> values) => Percentile(values, 50);

    public static double Mean(IReadOnlyList<double> values) => values.Count == 0 ? double.NaN : values.Average();
}

/// <summary>One figure measured in several repetitions: reported as the median, with min and max.</summary>
public sealed record Figure(IReadOnlyList<double> Reps)
{
    public double Median => Stats.Median(Reps);
    public double Min => Reps.Count == 0 ? double.NaN : Reps.Min();
    public double Max => Reps.Count == 0 ? double.NaN : Reps.Max();

    public string Format(string unit = "", string number = "0.000") =>
        $"{Median.ToString(number, Inv)}{unit} (min {Min.ToString(number, Inv)}, max {Max.ToString(number, Inv)}, n={Reps.Count})";

    public string Short(string unit = "", string number = "0.000") => Median.ToString(number, Inv) + unit;

    private static IFormatProvider Inv => System.Globalization.CultureInfo.InvariantCulture;
}

/// <summary>Collects the per-repetition values of several named figures.</summary>
public sealed class FigureSet
{
    private readonly Dictionary<string, List<double>> _values = new(StringComparer.Ordinal);

    public void Add(string name, double value)
    {
        if (!_values.TryGetValue(name, out var list))
            _values[name] = list = [];
        list.Add(value);
    }

    public Figure this[string name] => new(_values.TryGetValue(name, out var list) ? list : []);
}

namespace MlNetTransfer.Evaluation;

/// <summary>
/// The Wilson score interval of a proportion (an accuracy, a recall): unlike the normal approximation it stays inside
/// [0, 1] and keeps its coverage for the few dozen images a small validation set gives, and at 0 or n successes.
/// </summary>
public static class WilsonInterval
{
    /// <summary>The 95 % interval (z = 1.96) of <paramref name="successes"/> out of <paramref name="count"/>; (0, 1) when count is 0.</summary>
    public static (double Low, double High) Of(int successes, int count, double z = 1.959963984540054)
    {
        if (count < 0 || successes < 0 || successes > count)
            throw new ArgumentOutOfRangeException(nameof(successes), "must be between 0 and count");
        if (count == 0)
            return (0, 1);
        double n = count, p = successes / n, z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = z / (1 + z2 / n) * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }
}

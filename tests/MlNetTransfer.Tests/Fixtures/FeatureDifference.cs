namespace MlNetTransfer.Tests.Fixtures;

/// <summary>How far one feature vector is from another: what the reduced JPEG decode's stated bound is in.</summary>
public static class FeatureDifference
{
    /// <summary>Cosine of <paramref name="reference"/> and <paramref name="other"/>, and relative L2 (|other - reference| / |reference|).</summary>
    public static (double Cosine, double RelativeL2) Of(float[] reference, float[] other)
    {
        double dot = 0, rr = 0, oo = 0, dd = 0;
        for (int j = 0; j < reference.Length; j++)
        {
            dot += (double)reference[j] * other[j];
            rr += (double)reference[j] * reference[j];
            oo += (double)other[j] * other[j];
            dd += ((double)reference[j] - other[j]) * ((double)reference[j] - other[j]);
        }
        return (dot / Math.Sqrt(rr * oo), Math.Sqrt(dd / rr));
    }
}

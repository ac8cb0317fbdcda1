using System.Buffers.Binary;
using System.IO.Hashing;

namespace MlNetTransfer.IO;

/// <summary>
/// An XxHash3 of a file's content written as its last 8 bytes, so a derived file (a checkpoint) is verified whole
/// before anything in it is used: one flipped bit is a mismatch, not a poisoned model.
/// </summary>
internal static class ChecksumTrailer
{
    public const int Length = sizeof(ulong);

    /// <summary>Hashes everything written to <paramref name="stream"/> (readable and seekable) and appends the hash.</summary>
    public static void Append(Stream stream)
    {
        stream.Flush();
        long length = stream.Length;
        stream.Position = 0;
        ulong hash = Hash(stream, length);
        Span<byte> trailer = stackalloc byte[Length];
        BinaryPrimitives.WriteUInt64LittleEndian(trailer, hash);
        stream.Position = length;
        stream.Write(trailer);
    }

    /// <summary>The file ends with the hash of everything before it.</summary>
    public static bool Matches(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length < Length)
                return false;
            ulong hash = Hash(stream, stream.Length - Length);
            Span<byte> trailer = stackalloc byte[Length];
            stream.ReadExactly(trailer);
            return BinaryPrimitives.ReadUInt64LittleEndian(trailer) == hash;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static ulong Hash(Stream stream, long count)
    {
        var hash = new XxHash3();
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0)
                throw new EndOfStreamException();
            hash.Append(buffer.AsSpan(0, n));
            count -= n;
        }
        return hash.GetCurrentHashAsUInt64();
    }
}

using System.Text;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// Writes fuzz/corpus-manifest: small manifests, each one byte ('0': read as <c>.csv</c>, '1': as <c>.tsv</c>) then the
/// text. The rows name the images of <see cref="WorkFolder"/> (a.png, b.png, c.png, sub/d.png; bad.png and empty.png
/// are not images; missing.png does not exist).
/// </summary>
public static class SeedCorpus
{
    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        void Put(string name, char ext, string text, bool bom = false)
        {
            var bytes = new List<byte> { (byte)ext };
            if (bom)
                bytes.AddRange([0xEF, 0xBB, 0xBF]);
            bytes.AddRange(Encoding.UTF8.GetBytes(text));
            File.WriteAllBytes(Path.Combine(dir, name), bytes.ToArray());
            Console.WriteLine($"{bytes.Count,7} {name}");
        }

        Put("header.csv", '0', "path,label\na.png,shirt\nb.png,bag\nc.png,shirt\n");
        Put("no-header.csv", '0', "a.png,shirt\nb.png,bag\nsub/d.png,bag\n");
        Put("split.csv", '0', "path,label,split\na.png,shirt,train\nb.png,bag,train\nc.png,shirt,val\nsub/d.png,bag,test\n");
        Put("split-names.csv", '0', "image,class,split\na.png,x,TRAIN\nb.png,y,validation\nc.png,x,valid\nsub/d.png,y,Test\n");
        Put("quoted.csv", '0', "\"path\",\"label\"\n\"a.png\",\"coat, long\"\n\"b.png\",\"say \"\"hi\"\"\"\n\"c.png\",\"\"\n");
        Put("comments-blank.csv", '0', "# a comment\n\npath,label\n  # indented comment\n\na.png , shirt \n\n\nb.png,bag\n#c.png,gone\n");
        Put("tabs.tsv", '1', "path\tlabel\tsplit\na.png\tshirt\ttrain\nb.png\tbag\ttrain\nc.png\tshirt\ttest\n");
        Put("bom-crlf.csv", '0', "path,label\r\na.png,shirt\r\nb.png,bag\r\n", bom: true);
        Put("missing-file.csv", '0', "path,label\na.png,shirt\nmissing.png,bag\n");
        Put("missing-label.csv", '0', "path,label\na.png,shirt\nb.png,\n");
        Put("unknown-split.csv", '0', "path,label,split\na.png,shirt,train\nb.png,bag,holdout\n");
        Put("mixed-split.csv", '0', "path,label,split\na.png,shirt,train\nb.png,bag\nc.png,shirt,val\n");
        Put("not-images.csv", '0', "path,label\na.png,shirt\nbad.png,bag\nempty.png,bag\nm.csv,self\n");
        Put("parent-and-rooted.csv", '0', "path,label\n../" + "x.png,up\nsub/../a.png,shirt\n/tmp/none.png,abs\n");
        Put("paths-only.tsv", '1', "file\na.png\nb.png\n\nsub/d.png\textra\tfields\there\n");
        Put("one-field.csv", '0', "a.png\n");
    }
}

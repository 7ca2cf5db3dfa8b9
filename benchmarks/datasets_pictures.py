"""Before/after pictures for docs/datasets.md, made with the engine itself."""
import os, shutil, sys
import numpy as np
from PIL import Image, ImageDraw

if __name__ == "__main__":
    from latentlab.data import load_folder
    out_dir = sys.argv[1]
    src = "/usr/share/openclipart/png"
    picks = []
    for dp, _, fs in sorted(os.walk(src)):
        for f in sorted(fs):
            p = os.path.join(dp, f)
            if os.path.islink(p):
                continue
            try:
                im = Image.open(p)
                if im.mode != "RGBA" or max(im.size) > 800:
                    continue
                a = np.asarray(im.convert("RGBA"))
                vis = a[..., 3] > 128
                if vis.mean() < 0.03:
                    continue
                lum = a[..., :3][vis].mean()
                if (lum < 40 and len([q for q in picks if q[1] == "dark"]) < 5) or \
                   (lum > 200 and len([q for q in picks if q[1] == "light"]) < 1) or \
                   (80 < lum < 170 and len([q for q in picks if q[1] == "mid"]) < 2):
                    picks.append((p, "dark" if lum < 40 else "light" if lum > 200 else "mid"))
            except Exception:
                continue
            if len(picks) >= 8:
                break
        if len(picks) >= 8:
            break
    folder = "/tmp/docpics/art"
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i, (p, _) in enumerate(picks):
        shutil.copy(p, os.path.join(folder, f"{i}_{os.path.basename(p)}"))
    before = load_folder(folder, image_size=64, background="black", fit="stretch", cache=False) if False else None

    def row(arrs):
        arrs = [np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a for a in arrs]
        gap = np.full((arrs[0].shape[0], 4, 3), 0.5, np.float32)
        parts = []
        for a in arrs:
            parts += [a, gap]
        return np.concatenate(parts[:-1], axis=1)

    # old rule: transparency on black, stretched (decoded by hand the way the loader did, so blank ones show)
    from latentlab.data.decode import _fit_array
    olds, news = [], []
    new = load_folder(folder, image_size=64, cache=False)
    for name in sorted(os.listdir(folder)):
        a = np.asarray(Image.open(os.path.join(folder, name)).convert("RGBA")).astype(np.float32) / 255
        old = a[..., :3] * a[..., 3:]
        olds.append(_fit_array((old * 255).round().astype(np.uint8), (64, 64), "stretch").astype(np.float32) / 255)
        news.append(new.images[new.paths.index(name)])
    grid = np.concatenate([row(olds), np.full((4, row(olds).shape[1], 3), 0.5, np.float32), row(news)], axis=0)
    Image.fromarray((grid * 255).round().astype(np.uint8)).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(
        os.path.join(out_dir, "datasets_transparency.png"))
    # aspect: wide clip-art-like picture, stretch vs pad vs crop
    wide = Image.new("RGBA", (256, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(wide)
    d.rounded_rectangle((4, 4, 252, 60), radius=20, outline=(0, 0, 0, 255), width=5)
    d.ellipse((20, 14, 56, 50), fill=(200, 30, 30, 255))
    d.line((70, 32, 236, 32), fill=(20, 20, 160, 255), width=6)
    af = "/tmp/docpics/wide"
    shutil.rmtree(af, ignore_errors=True)
    os.makedirs(af)
    wide.save(os.path.join(af, "wide.png"))
    outs = [load_folder(af, image_size=64, fit=f, cache=False).images[0] for f in ("stretch", "pad", "crop")]
    g = row(outs)
    Image.fromarray((g * 255).round().astype(np.uint8)).resize((g.shape[1] * 2, g.shape[0] * 2), Image.NEAREST).save(
        os.path.join(out_dir, "datasets_aspect.png"))
    print(picks)

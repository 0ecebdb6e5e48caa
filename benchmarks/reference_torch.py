"""A PyTorch re-implementation of the reference GANomaly training step, for speed comparison only.

It follows the official code's current `optimize_params` (samet-akcay/ganomaly): forward G, then
D on x and on G(x).detach(); the G loss calls D again on x and on G(x) for feature matching (four
D passes in all); BCE D loss averaged over real and fake; D re-initialised below 1e-5. The
network is the same DCGAN stack as tfganomaly's. The official repository cannot be fetched on
this offline machine, so this re-implementation stands in for it; needs `pip install torch`.
"""

from __future__ import annotations

import time

import numpy as np


def _build(isize: int, nc: int, nz: int = 100, nf: int = 64):
    import torch.nn as nn

    def encoder(out_channels, final=True):
        layers = [nn.Conv2d(nc, nf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        size, ch = isize // 2, nf
        while size > 4:
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch, size = ch * 2, size // 2
        if final:
            layers.append(nn.Conv2d(ch, out_channels, 4, 1, 0, bias=False))
        return nn.Sequential(*layers)

    def decoder():
        ch, size = nf // 2, 4
        while size < isize:
            ch, size = ch * 2, size * 2
        layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        size = 4
        while size < isize // 2:
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch, size = ch // 2, size * 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
        return nn.Sequential(*layers)

    class NetG(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder1, self.decoder, self.encoder2 = encoder(nz), decoder(), encoder(nz)

        def forward(self, x):
            latent_i = self.encoder1(x)
            fake = self.decoder(latent_i)
            return fake, latent_i, self.encoder2(fake)

    class NetD(nn.Module):
        def __init__(self):
            super().__init__()
            full = encoder(1)
            self.features = nn.Sequential(*list(full.children())[:-1])
            self.classifier = nn.Sequential(list(full.children())[-1], nn.Sigmoid())

        def forward(self, x):
            features = self.features(x)
            return self.classifier(features).view(-1, 1).squeeze(1), features

    return NetG(), NetD()


def _weights_init(module):
    name = module.__class__.__name__
    if "Conv" in name:
        module.weight.data.normal_(0.0, 0.02)
    elif "BatchNorm" in name:
        module.weight.data.normal_(1.0, 0.02)
        module.bias.data.fill_(0)


def reference_images_per_s(batches: list, steps: int, isize: int = 32, nc: int = 1) -> float:
    """Images/s of the reference step on uint8 NHWC batches (real data), after 3 warm-up steps."""
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    netg, netd = _build(isize, nc)
    netg.apply(_weights_init)
    netd.apply(_weights_init)
    opt_g = torch.optim.Adam(netg.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(netd.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCELoss(), nn.L1Loss()
    l2 = lambda a, b: torch.mean(torch.pow(a - b, 2))  # noqa: E731
    tensors = [torch.from_numpy(np.ascontiguousarray(np.asarray(b).transpose(0, 3, 1, 2))).float() / 127.5 - 1
               for b in batches]

    def step(x):
        fake, latent_i, latent_o = netg(x)
        pred_real, _ = netd(x)
        pred_fake, _ = netd(fake.detach())
        opt_g.zero_grad()
        err_g = (l2(netd(x)[1], netd(fake)[1]) * 1 + l1(fake, x) * 50 + l2(latent_o, latent_i) * 1)
        err_g.backward(retain_graph=True)
        opt_g.step()
        opt_d.zero_grad()
        err_d = (bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake))) * 0.5
        err_d.backward()
        opt_d.step()
        if err_d.item() < 1e-5:
            netd.apply(_weights_init)

    netg.train()
    netd.train()
    for x in tensors[:3]:
        step(x)
    start = time.perf_counter()
    for i in range(steps):
        step(tensors[i % len(tensors)])
    return steps * tensors[0].shape[0] / (time.perf_counter() - start)

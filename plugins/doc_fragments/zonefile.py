# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of provider zonefile.
    DOCUMENTATION = r'''
options:
  zone_file:
    description:
      - Provider V(zonefile). Path of the zone file (RFC 1035 master file format).
      - May contain C({zone}), replaced by the zone name, so one task can cover many zones, for example
        V(/srv/dns/{zone}.zone). The zone of a domain is then the longest parent name with a file.
      - Lines the module does not change stay byte for byte; the SOA serial is increased on change and the file
        is replaced atomically. The file must not change between the module's read and write (it fails then).
      - Required with O(provider=zonefile); checked before any file is read.
    type: path
'''
